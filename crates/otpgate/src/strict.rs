//! Strict line endings on the HTTP edge: a request line, header line, chunk-size line or
//! trailer line must end in CRLF. hyper (like many parsers) also accepts a bare LF, and a
//! proxy in front that reads the same bytes differently could then be made to see other
//! requests than otpgate does (request smuggling). [`StrictLines`] wraps a connection and
//! follows HTTP/1.1 message framing over the bytes it reads; a bare LF where a line ends
//! becomes a NUL byte, which hyper refuses as an invalid request (`400 Bad Request`), and the
//! connection reads nothing more, so it is closed. Bodies pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes of a message head kept to find its framing (hyper refuses larger heads).
const MAX_HEAD: usize = 64 * 1024;

/// Where the reader is in the stream of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A request line and headers (or a chunked body's trailers, `trailers: true`).
    Head { trailers: bool },
    /// `n` more body bytes.
    Body(u64),
    /// A chunk-size line of a chunked body.
    ChunkSize,
    /// `n` more bytes of a chunk, then its CRLF.
    ChunkData(u64),
    /// The CRLF after a chunk's data (`seen_cr`).
    ChunkEnd { seen_cr: bool },
    /// The framing could not be followed (hyper refuses such a request itself): bytes pass.
    Lost,
}

/// The line-ending checker of one connection's incoming bytes.
#[derive(Debug)]
pub struct Framing {
    part: Part,
    /// The current line so far (heads and chunk-size lines).
    line: Vec<u8>,
    /// The head's header lines (lower-cased names), for its framing.
    content_length: Option<u64>,
    chunked: bool,
    head_bytes: usize,
    prev_cr: bool,
    /// A bare LF was found: nothing more is read from this connection.
    spoiled: bool,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            part: Part::Head { trailers: false },
            line: Vec::new(),
            content_length: None,
            chunked: false,
            head_bytes: 0,
            prev_cr: false,
            spoiled: false,
        }
    }
}

impl Framing {
    /// Looks at `bytes` as they arrive; a bare LF ending a line is replaced by NUL.
    pub fn scan(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while let Some(b) = bytes.get_mut(i) {
            match self.part {
                Part::Lost => return,
                Part::Body(n) | Part::ChunkData(n) => {
                    let left_here = (bytes.len() - i) as u64;
                    let take = n.min(left_here);
                    i += usize::try_from(take).unwrap_or(usize::MAX);
                    let left = n - take;
                    self.part = match (&self.part, left) {
                        (Part::Body(_), 0) => Part::Head { trailers: false },
                        (Part::Body(_), l) => Part::Body(l),
                        (_, 0) => Part::ChunkEnd { seen_cr: false },
                        (_, l) => Part::ChunkData(l),
                    };
                }
                Part::ChunkEnd { seen_cr } => {
                    self.part = match (seen_cr, *b) {
                        (false, b'\r') => Part::ChunkEnd { seen_cr: true },
                        (true, b'\n') => Part::ChunkSize,
                        (false, b'\n') => {
                            *b = 0;
                            self.spoiled = true;
                            Part::Lost
                        }
                        _ => Part::Lost,
                    };
                    i += 1;
                }
                Part::Head { .. } | Part::ChunkSize => {
                    if *b == b'\n' {
                        if !self.prev_cr {
                            *b = 0;
                            self.spoiled = true;
                            self.part = Part::Lost;
                            return;
                        }
                        self.prev_cr = false;
                        self.end_line();
                    } else {
                        self.prev_cr = *b == b'\r';
                        if !self.prev_cr && self.line.len() < MAX_HEAD {
                            self.line.push(*b);
                        }
                        self.head_bytes += 1;
                        if self.head_bytes > MAX_HEAD {
                            self.part = Part::Lost;
                        }
                    }
                    i += 1;
                }
            }
        }
    }

    /// A line of a head or a chunk-size line ended (its CRLF seen).
    fn end_line(&mut self) {
        // The buffer goes back afterwards, emptied but with its capacity.
        let mut line = std::mem::take(&mut self.line);
        self.judge_line(&line);
        line.clear();
        self.line = line;
    }

    fn judge_line(&mut self, line: &[u8]) {
        match self.part {
            Part::ChunkSize => {
                let size = line
                    .split(|b| *b == b';')
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                self.head_bytes = 0;
                self.part = match size {
                    Some(0) => Part::Head { trailers: true },
                    Some(n) => Part::ChunkData(n),
                    None => Part::Lost,
                };
            }
            Part::Head { trailers } if line.is_empty() => {
                // Blank lines before a request line are tolerated (RFC 9112 §2.2).
                if self.head_bytes == 0 {
                    return;
                }
                self.head_bytes = 0;
                self.part = if trailers {
                    Part::Head { trailers: false }
                } else if self.chunked {
                    Part::ChunkSize
                } else {
                    match self.content_length.take() {
                        Some(n) if n > 0 => Part::Body(n),
                        _ => Part::Head { trailers: false },
                    }
                };
                self.chunked = false;
                self.content_length = None;
            }
            Part::Head { trailers: false } => {
                if let Some((name, value)) = split_colon(line) {
                    let value = String::from_utf8_lossy(value);
                    if name.eq_ignore_ascii_case(b"content-length") {
                        match value.trim().parse::<u64>() {
                            Ok(n) => self.content_length = Some(n),
                            Err(_) => self.part = Part::Lost,
                        }
                    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                        self.chunked = value.trim().eq_ignore_ascii_case("chunked");
                        if !self.chunked {
                            self.part = Part::Lost;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A header line's name and value.
fn split_colon(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = line.iter().position(|b| *b == b':')?;
    Some((line.get(..at)?, line.get(at + 1..)?))
}

/// A connection whose incoming line endings are checked ([`Framing`]).
pub struct StrictLines<T> {
    inner: T,
    framing: Framing,
}

impl<T> StrictLines<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            framing: Framing::default(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StrictLines<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // After a bare LF the connection ends: hyper has answered what it could parse (400),
        // and must not wait for more (a spoiled trailer would leave it waiting).
        if this.framing.spoiled {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a line ended in a bare LF",
            )));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && let Some(new) = buf.filled_mut().get_mut(before..)
        {
            this.framing.scan(new);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StrictLines<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes after scanning `input` in pieces of `step`.
    fn scanned(input: &str, step: usize) -> Vec<u8> {
        let mut f = Framing::default();
        let mut bytes = input.as_bytes().to_vec();
        for chunk in bytes.chunks_mut(step) {
            f.scan(chunk);
        }
        bytes
    }

    #[test]
    fn crlf_messages_pass_untouched_in_any_pieces() {
        let stream = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
                      POST /validate/check HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\nuser=a\nb&pass=\
                      POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\na\nb\nc\r\n0\r\nX-T: 1\r\n\r\n\
                      GET / HTTP/1.1\r\n\r\n";
        for step in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(scanned(stream, step), stream.as_bytes(), "step {step}");
        }
    }

    #[test]
    fn a_bare_lf_ending_a_line_is_spoiled_wherever_it_is() {
        for bad in [
            "GET / HTTP/1.1\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\n",
            "GET / HTTP/1.1\r\n\r\nGET /second HTTP/1.1\nHost: x\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n",
        ] {
            for step in [1, 5, 1000] {
                let out = scanned(bad, step);
                assert!(out.contains(&0), "{bad:?} in pieces of {step}");
                assert_eq!(out.len(), bad.len());
            }
        }
    }
}
