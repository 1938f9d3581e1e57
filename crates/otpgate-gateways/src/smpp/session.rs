//! One persistent SMPP session per gateway: a task that connects (optionally over TLS), binds
//! as a transceiver (or a transmitter), keeps the link alive with `enquire_link`, submits with
//! up to `WINDOW` requests awaiting their answer, takes the SMSC's `deliver_sm` receipts and
//! reconnects with back-off when the link is lost. Sends reach the task through a channel; the
//! task ends (with an `unbind`) when the provider that owns the channel is dropped.

use super::pdu::{self, Pdu};
use crate::{GatewayReceipt, SendError};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How the session binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BindMode {
    /// bind_transceiver with receipts; an SMSC that refuses it for another reason than the
    /// credentials is bound as a transmitter instead.
    Transceiver,
    /// bind_transmitter without receipts (privacyIDEA's way).
    Transmitter,
}

/// Where and how to connect.
pub(crate) struct Link {
    pub gateway: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    pub system_id: String,
    pub password: String,
    pub bind: BindMode,
    /// The time an answer may take (connect, bind, each submit, enquire_link).
    pub timeout: Duration,
    /// Requests awaiting their answer at most.
    pub window: usize,
    /// An idle link is checked this often.
    pub enquire_every: Duration,
    pub receipts: mpsc::Sender<GatewayReceipt>,
}

/// A submit_sm for the session: answered with the SMSC's message id.
struct Job {
    submit: pdu::Submit,
    /// The caller waits until then at most: a job that cannot be answered before is not sent
    /// (its login has failed over or ended), and its answer is awaited until then.
    deadline: Instant,
    reply: oneshot::Sender<Result<String, SendError>>,
}

/// The handle of a running session; dropping it ends the session.
pub(crate) struct Session {
    jobs: mpsc::Sender<Job>,
    receiving: Arc<AtomicBool>,
}

/// A submit is not written with less time than this left before its caller's deadline.
const LAST_MOMENT: Duration = Duration::from_millis(50);

/// The longest a PDU may take to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A session that lasted this long was a working one: when it drops, the next attempt is at
/// once.
const STEADY: Duration = Duration::from_secs(10);

impl Session {
    pub(crate) fn start(link: Link) -> Self {
        let (jobs, rx) = mpsc::channel(256);
        let receiving = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(link, rx, receiving.clone()));
        Self { jobs, receiving }
    }

    /// Whether the session is bound so that receipts come on it (a transceiver bind).
    pub(crate) fn receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed)
    }

    /// Submits one part; the SMSC's message id. The caller bounds the wait.
    pub(crate) async fn submit(
        &self,
        submit: pdu::Submit,
        deadline: Instant,
    ) -> Result<String, SendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                submit,
                deadline,
                reply,
            })
            .await
            .map_err(|_| SendError::Smpp("the SMPP session has ended".into()))?;
        answer
            .await
            .map_err(|_| SendError::Smpp("the SMPP session has ended".into()))?
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A bound link: its write half, the PDUs its reader task passes on, and whether receipts
/// come on it.
struct Bound {
    writer: WriteHalf<Box<dyn Io>>,
    incoming: mpsc::Receiver<Result<Pdu, String>>,
    reader: tokio::task::JoinHandle<()>,
    receipts: bool,
    seq: u32,
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Bound {
    fn next_seq(&mut self) -> u32 {
        self.seq = if self.seq >= 0x7FFF_FFFF {
            1
        } else {
            self.seq + 1
        };
        self.seq
    }

    async fn write(
        &mut self,
        command: u32,
        status: u32,
        sequence: u32,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let bytes = pdu::encode(&Pdu {
            command,
            status,
            sequence,
            body,
        });
        // An SMSC that does not take a PDU within WRITE_TIMEOUT (it stopped reading) fails
        // the link, so the session's timers keep running.
        match tokio::time::timeout(WRITE_TIMEOUT, self.writer.write_all(&bytes)).await {
            Ok(r) => r.map_err(|e| format!("the SMSC connection failed: {}", e.kind())),
            Err(_) => Err("the SMSC stopped reading".into()),
        }
    }
}

async fn read_pdus(mut r: ReadHalf<Box<dyn Io>>, tx: mpsc::Sender<Result<Pdu, String>>) {
    loop {
        let mut header = [0u8; 16];
        let got = async {
            r.read_exact(&mut header)
                .await
                .map_err(|e| format!("the SMSC connection failed: {}", e.kind()))?;
            let len = pdu::announced_len(&header)
                .ok_or_else(|| "the SMSC sent a malformed PDU".to_owned())?;
            let mut full = header.to_vec();
            full.resize(len, 0);
            r.read_exact(full.get_mut(16..).unwrap_or_default())
                .await
                .map_err(|e| format!("the SMSC connection failed: {}", e.kind()))?;
            pdu::decode(&full).ok_or_else(|| "the SMSC sent a malformed PDU".to_owned())
        }
        .await;
        let end = got.is_err();
        if tx.send(got).await.is_err() || end {
            return;
        }
    }
}

/// Connects and binds with `mode`.
async fn bind(link: &Link, mode: BindMode) -> Result<Bound, SendError> {
    let tcp = tokio::time::timeout(
        link.timeout,
        TcpStream::connect((link.host.as_str(), link.port)),
    )
    .await
    .map_err(|_| SendError::Timeout(format!("{}", link.timeout.as_secs_f64())))?
    .map_err(|e| SendError::Connect(format!("SMSC: {}", e.kind())))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match &link.tls {
        None => Box::new(tcp),
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = tokio::time::timeout(link.timeout, connector.connect(name.clone(), tcp))
                .await
                .map_err(|_| SendError::Timeout(format!("{}", link.timeout.as_secs_f64())))?
                .map_err(|e| SendError::Connect(format!("SMSC TLS: {e}")))?;
            Box::new(tls)
        }
    };
    let (r, writer) = tokio::io::split(io);
    let (tx, incoming) = mpsc::channel(64);
    let reader = tokio::spawn(read_pdus(r, tx));
    let mut b = Bound {
        writer,
        incoming,
        reader,
        receipts: mode == BindMode::Transceiver,
        seq: 0,
    };
    let (command, response) = match mode {
        BindMode::Transceiver => (pdu::BIND_TRANSCEIVER, pdu::BIND_TRANSCEIVER_RESP),
        BindMode::Transmitter => (pdu::BIND_TRANSMITTER, pdu::BIND_TRANSMITTER_RESP),
    };
    let seq = b.next_seq();
    b.write(
        command,
        0,
        seq,
        pdu::bind_transmitter(&link.system_id, &link.password),
    )
    .await
    .map_err(SendError::Connect)?;
    let deadline = Instant::now() + link.timeout;
    loop {
        let p = match tokio::time::timeout_at(deadline, b.incoming.recv()).await {
            Err(_) => {
                return Err(SendError::Timeout(format!(
                    "{}",
                    link.timeout.as_secs_f64()
                )));
            }
            Ok(None) => return Err(SendError::Connect("the SMSC closed the connection".into())),
            Ok(Some(Err(e))) => return Err(SendError::Connect(e)),
            Ok(Some(Ok(p))) => p,
        };
        if p.sequence == seq && p.command == pdu::GENERIC_NACK {
            return Err(SendError::Smpp(format!(
                "bind refused (generic_nack, status 0x{:08x})",
                p.status
            )));
        }
        if p.sequence == seq && p.command == response {
            if p.status != 0 {
                return Err(SendError::Smpp(format!(
                    "bind refused (status 0x{:08x})",
                    p.status
                )));
            }
            return Ok(b);
        }
    }
}

/// Binds as `link.bind` says; an SMSC that does not know the transceiver bind (it answers
/// `ESME_RINVCMDID` or `generic_nack`) is bound as a transmitter instead. Other refusals
/// (credentials, "already bound", a failed bind) are failures: a transmitter there would
/// quietly go without receipts.
async fn connect(link: &Link) -> Result<Bound, SendError> {
    match bind(link, link.bind).await {
        Err(SendError::Smpp(why))
            if link.bind == BindMode::Transceiver
                && (why.contains(&format!("0x{:08x}", pdu::ESME_RINVCMDID))
                    || why.contains("generic_nack")) =>
        {
            tracing::info!(gateway = %link.gateway, reason = %why, "the SMSC refused a transceiver bind: bound as a transmitter, without delivery receipts");
            bind(link, BindMode::Transmitter).await
        }
        other => other,
    }
}

async fn run(link: Link, mut jobs: mpsc::Receiver<Job>, receiving: Arc<AtomicBool>) {
    let mut backoff = Duration::ZERO;
    let mut dropped_soon = false;
    // Why the link is down; None before the first attempt (whose sends wait for it).
    let mut down: Option<SendError> = None;
    loop {
        let attempt = connect(&link);
        tokio::pin!(attempt);
        // While a reconnect is under way, sends fail at once with why the link went down (a
        // login fails over instead of waiting for a dead SMSC).
        let connected = loop {
            tokio::select! {
                biased;
                r = &mut attempt => break r,
                job = jobs.recv(), if down.is_some() => match job {
                    None => return,
                    Some(j) => {
                        let why = down
                            .clone()
                            .unwrap_or_else(|| SendError::Smpp("the SMPP session is down".into()));
                        let _ = j.reply.send(Err(why));
                    }
                },
            }
        };
        let why = match connected {
            Ok(bound) => {
                tracing::info!(gateway = %link.gateway, receipts = bound.receipts, "SMPP session bound");
                receiving.store(bound.receipts, Ordering::Relaxed);
                let since = Instant::now();
                let ended = serve(&link, bound, &mut jobs).await;
                receiving.store(false, Ordering::Relaxed);
                match ended {
                    Ended::Closed => return,
                    Ended::Lost(why) => {
                        tracing::warn!(gateway = %link.gateway, reason = %why, "SMPP session lost: reconnecting");
                        // A link that was up a while, or the first one to drop soon, is
                        // tried again at once; one that keeps dropping right after its bind
                        // backs off as a failing one does.
                        backoff = if since.elapsed() >= STEADY {
                            dropped_soon = false;
                            Duration::ZERO
                        } else if !dropped_soon {
                            dropped_soon = true;
                            Duration::ZERO
                        } else {
                            (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF)
                        };
                        SendError::Connect(why)
                    }
                }
            }
            Err(e) => {
                tracing::warn!(gateway = %link.gateway, error = %e, retry_in = ?backoff.max(Duration::from_secs(1)), "SMPP bind failed");
                backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                e
            }
        };
        // Until the next attempt, sends fail at once (so a login fails over at once).
        down = Some(why.clone());
        let until = Instant::now() + backoff;
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(until) => break,
                job = jobs.recv() => match job {
                    None => return,
                    Some(j) => {
                        let _ = j.reply.send(Err(why.clone()));
                    }
                },
            }
        }
    }
}

enum Ended {
    /// The provider was dropped: the session unbound.
    Closed,
    /// The link failed (the reason).
    Lost(String),
}

enum Waiting {
    Submit(oneshot::Sender<Result<String, SendError>>),
    Enquire,
}

async fn serve(link: &Link, mut b: Bound, jobs: &mut mpsc::Receiver<Job>) -> Ended {
    let mut pending: HashMap<u32, (Instant, Waiting)> = HashMap::new();
    let mut last_heard = Instant::now();
    let tick_every = (link.timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lost = |pending: &mut HashMap<u32, (Instant, Waiting)>, why: String| {
        for (_, (_, w)) in pending.drain() {
            if let Waiting::Submit(reply) = w {
                let _ = reply.send(Err(SendError::Connect(why.clone())));
            }
        }
        Ended::Lost(why)
    };
    loop {
        let room = pending.len() < link.window;
        tokio::select! {
            incoming = b.incoming.recv() => {
                let p = match incoming {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => return lost(&mut pending, e),
                    None => return lost(&mut pending, "the SMSC connection ended".into()),
                };
                last_heard = Instant::now();
                if let Err(e) = take(link, &mut b, &mut pending, p).await {
                    return lost(&mut pending, e);
                }
            }
            job = jobs.recv(), if room => {
                let Some(Job { mut submit, deadline, reply }) = job else {
                    unbind(link, &mut b).await;
                    let _ = lost(&mut pending, "the SMPP session has ended".into());
                    return Ended::Closed;
                };
                // Its caller gave up, or will before an answer can come (its login has failed
                // over or ended): not sent late.
                if reply.is_closed() || Instant::now() + LAST_MOMENT >= deadline {
                    let _ = reply.send(Err(SendError::Timeout(format!(
                        "{}",
                        link.timeout.as_secs_f64()
                    ))));
                    continue;
                }
                if !b.receipts {
                    submit.registered_delivery = 0;
                }
                let seq = b.next_seq();
                if let Err(e) = b.write(pdu::SUBMIT_SM, 0, seq, pdu::submit_sm(&submit)).await {
                    let _ = reply.send(Err(SendError::Connect(e.clone())));
                    return lost(&mut pending, e);
                }
                pending.insert(seq, (deadline, Waiting::Submit(reply)));
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let expired: Vec<u32> = pending
                    .iter()
                    .filter(|(_, (deadline, _))| *deadline <= now)
                    .map(|(seq, _)| *seq)
                    .collect();
                for seq in expired {
                    match pending.remove(&seq) {
                        Some((_, Waiting::Submit(reply))) => {
                            let _ = reply.send(Err(SendError::Timeout(format!("{}", link.timeout.as_secs_f64()))));
                        }
                        Some((_, Waiting::Enquire)) => {
                            return lost(&mut pending, "the SMSC did not answer enquire_link".into());
                        }
                        None => {}
                    }
                }
                if now.duration_since(last_heard) >= link.enquire_every
                    && !pending.values().any(|(_, w)| matches!(w, Waiting::Enquire))
                {
                    let seq = b.next_seq();
                    if let Err(e) = b.write(pdu::ENQUIRE_LINK, 0, seq, Vec::new()).await {
                        return lost(&mut pending, e);
                    }
                    pending.insert(seq, (now + link.timeout, Waiting::Enquire));
                }
            }
        }
    }
}

/// Takes one PDU from the SMSC: an answer to a request, a receipt, a check or an unbind.
async fn take(
    link: &Link,
    b: &mut Bound,
    pending: &mut HashMap<u32, (Instant, Waiting)>,
    p: Pdu,
) -> Result<(), String> {
    match p.command {
        pdu::SUBMIT_SM_RESP | pdu::GENERIC_NACK | pdu::ENQUIRE_LINK_RESP => {
            match pending.remove(&p.sequence) {
                Some((_, Waiting::Submit(reply))) => {
                    let answer = if p.command == pdu::SUBMIT_SM_RESP && p.status == 0 {
                        let mut pos = 0;
                        Ok(pdu::read_cstr(&p.body, &mut pos).unwrap_or_default())
                    } else {
                        Err(SendError::Smpp(format!(
                            "submit_sm refused (status 0x{:08x})",
                            p.status
                        )))
                    };
                    let _ = reply.send(answer);
                }
                Some((_, Waiting::Enquire)) | None => {}
            }
            Ok(())
        }
        pdu::ENQUIRE_LINK => {
            b.write(pdu::ENQUIRE_LINK_RESP, 0, p.sequence, Vec::new())
                .await
        }
        pdu::DELIVER_SM | pdu::DATA_SM => {
            let mut status = 0;
            let parsed = if p.command == pdu::DATA_SM {
                pdu::parse_data_sm(&p.body)
            } else {
                pdu::parse_deliver_sm(&p.body)
            };
            if let Some(r) = parsed.as_ref().and_then(pdu::receipt) {
                let receipt = GatewayReceipt {
                    gateway: link.gateway.clone(),
                    ids: pdu::id_spellings(&r.id),
                    status: r.stat,
                    to: None,
                };
                // A receipt that cannot be taken now is refused for the moment: the SMSC
                // delivers it again later.
                if link.receipts.try_send(receipt).is_err() {
                    tracing::warn!(gateway = %link.gateway, "too many delivery receipts waiting: one refused for now");
                    status = pdu::ESME_RX_T_APPN;
                }
            }
            let mut body = Vec::new();
            pdu::cstr(&mut body, "");
            b.write(p.command | pdu::RESPONSE_BIT, status, p.sequence, body)
                .await
        }
        pdu::UNBIND => {
            let _ = b.write(pdu::UNBIND_RESP, 0, p.sequence, Vec::new()).await;
            Err("the SMSC unbound the session".into())
        }
        c if c & pdu::RESPONSE_BIT != 0 => Ok(()),
        // alert_notification needs no answer; any other request is not supported.
        0x0000_0102 => Ok(()),
        _ => {
            b.write(
                pdu::GENERIC_NACK,
                pdu::ESME_RINVCMDID,
                p.sequence,
                Vec::new(),
            )
            .await
        }
    }
}

/// Unbinds (waiting a moment for the answer) before the session ends.
async fn unbind(link: &Link, b: &mut Bound) {
    let seq = b.next_seq();
    if b.write(pdu::UNBIND, 0, seq, Vec::new()).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(link.timeout.min(Duration::from_secs(2)), async {
        while let Some(Ok(p)) = b.incoming.recv().await {
            if p.command == pdu::UNBIND_RESP {
                return;
            }
        }
    })
    .await;
    let _ = b.writer.shutdown().await;
}
