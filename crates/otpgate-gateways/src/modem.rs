//! A GSM modem on a serial line, driven with AT commands (3GPP TS 27.005) by otpgate itself,
//! without gnokii. One owner thread per device serialises all access: it opens the device
//! lazily, runs the start-up dialogue (`AT`, `ATE0`, `AT+CPIN?` and the SIM PIN when asked,
//! `AT+CREG?`), sends in PDU mode (`AT+CMGF=0`, a 3GPP TS 23.040 SMS-SUBMIT, GSM-7 or UCS-2,
//! long texts concatenated with a UDH and the OTP never split) or in text mode
//! (`AT+CMGF=1`, one SMS of plain ASCII; `auto` picks text mode when it fits), keeps the port
//! open between messages and reopens it after an error. [`pdu`] is the pure encoder.

use crate::{GatewayDef, GatewayReceipt, SendError};
use otpgate_core::sms_text::{self, Encoding};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SMS-SUBMIT PDUs (3GPP TS 23.040 §9.2.2.2), without a validity period.
pub mod pdu {
    /// A number as (digit count, type of address, swapped BCD): `+` makes it international
    /// (0x91), anything else is of unknown type (0x81). Only digits are kept.
    pub fn address(number: &str) -> (u8, u8, Vec<u8>) {
        let international = number.trim().starts_with('+');
        let digits: Vec<u8> = number
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|d| d - b'0')
            .collect();
        let bcd = digits
            .chunks(2)
            .map(|pair| {
                let lo = pair.first().copied().unwrap_or(0x0F);
                let hi = pair.get(1).copied().unwrap_or(0x0F);
                (hi << 4) | lo
            })
            .collect();
        let len = u8::try_from(digits.len()).unwrap_or(u8::MAX);
        (len, if international { 0x91 } else { 0x81 }, bcd)
    }

    /// The SMSC field: `00` (the SIM's own SMSC) or the given number.
    pub fn smsc(number: Option<&str>) -> Vec<u8> {
        match number.filter(|n| !n.trim().is_empty()) {
            None => vec![0],
            Some(n) => {
                let (_, toa, bcd) = address(n);
                let mut out = vec![u8::try_from(bcd.len() + 1).unwrap_or(u8::MAX), toa];
                out.extend(bcd);
                out
            }
        }
    }

    /// The TPDU (without the SMSC field) of one part: `septets` are GSM-7 codes (packed here,
    /// after the header with its fill bits) unless `ucs2` is set, in which case `data` is
    /// UCS-2 octets.
    pub fn submit(destination: &str, udh: &[u8], data: &[u8], ucs2: bool, report: bool) -> Vec<u8> {
        // TP-MTI = SMS-SUBMIT, TP-UDHI when there is a header, TP-SRR when a status report is
        // asked for; TP-MR 0 (the modem sets it).
        let first = 0x01 | if udh.is_empty() { 0 } else { 0x40 } | if report { 0x20 } else { 0 };
        let mut out = vec![first, 0x00];
        let (len, toa, bcd) = address(destination);
        out.extend([len, toa]);
        out.extend(bcd);
        out.push(0x00); // TP-PID
        if ucs2 {
            out.push(0x08);
            out.push(u8::try_from(udh.len() + data.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(udh);
            out.extend_from_slice(data);
        } else {
            out.push(0x00);
            let header_bits = udh.len() * 8;
            let fill = (7 - header_bits % 7) % 7;
            let udl = (header_bits + fill) / 7 + data.len();
            out.push(u8::try_from(udl).unwrap_or(u8::MAX));
            out.extend_from_slice(udh);
            out.extend(otpgate_core::sms_text::pack_septets(
                data,
                u32::try_from(fill).unwrap_or(0),
            ));
        }
        out
    }

    /// The message reference, the recipient's digits and the status (TP-MR, TP-RA, TP-ST)
    /// of an SMS-STATUS-REPORT in PDU mode (hex, with its SMSC field; 3GPP TS 23.040
    /// §9.2.2.3).
    pub fn status_report(hex: &str) -> Option<(u8, String, u8)> {
        let hex = hex.trim();
        if !hex.len().is_multiple_of(2) || hex.len() > 400 {
            return None;
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        let mut i = usize::from(*bytes.first()?) + 1;
        let first = *bytes.get(i)?;
        if first & 0x03 != 0x02 {
            return None; // not a status report
        }
        let mr = *bytes.get(i + 1)?;
        let digits = usize::from(*bytes.get(i + 2)?);
        let bcd = bytes.get(i + 4..i + 4 + digits.div_ceil(2))?;
        let to: String = bcd
            .iter()
            .flat_map(|b| [b & 0x0F, b >> 4])
            .take(digits)
            .filter(|d| *d < 10)
            .map(|d| char::from(b'0' + d))
            .collect();
        i += 4 + digits.div_ceil(2); // first octet, MR, length, type, the address
        i += 14; // TP-SCTS, TP-DT
        Some((mr, to, *bytes.get(i)?))
    }

    /// Upper-case hex, as `AT+CMGS` in PDU mode takes it.
    pub fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// How texts are handed to the modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Pdu,
    Text,
    /// Text mode for a text that text mode carries faithfully, PDU mode otherwise.
    Auto,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Settings {
    device: String,
    baud: u32,
    sim_pin: Option<String>,
    mode: Mode,
    smsc: Option<String>,
    timeout: Duration,
    /// Ask for status reports (`+CDS`) where the modem offers them.
    reports: bool,
}

fn option<'a>(def: &'a GatewayDef, key: &str) -> Option<&'a str> {
    def.options
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Where serial devices live (USB modems, on-board UARTs, udev's stable names, Bluetooth,
/// pseudo-terminals).
const SERIAL_PATHS: &[&str] = &["/dev/tty", "/dev/serial/", "/dev/rfcomm", "/dev/pts/"];

fn parse(def: &GatewayDef) -> Result<Settings, String> {
    let device = option(def, "DEVICE").ok_or("The parameter DEVICE is required.")?;
    if !SERIAL_PATHS.iter().any(|p| device.starts_with(p)) || device.contains("..") {
        return Err(format!(
            "DEVICE must be a serial device: a path starting with {}.",
            SERIAL_PATHS.join(", ")
        ));
    }
    let baud = match option(def, "BAUDRATE") {
        None => 115_200,
        Some(b) => b
            .parse::<u32>()
            .ok()
            .filter(|b| (300..=4_000_000).contains(b))
            .ok_or("BAUDRATE must be a number between 300 and 4000000.")?,
    };
    let mode = match option(def, "MODE").map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") => Mode::Auto,
        Some("pdu") => Mode::Pdu,
        Some("text") => Mode::Text,
        Some(_) => return Err("MODE must be auto, text or pdu.".into()),
    };
    let sim_pin = option(def, "SIM_PIN").map(str::to_owned);
    if sim_pin
        .as_ref()
        .is_some_and(|p| !(4..=8).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("SIM_PIN must be 4 to 8 digits.".into());
    }
    let smsc = option(def, "SMSC").map(str::to_owned);
    if smsc.as_ref().is_some_and(|s| {
        let digits = s.strip_prefix('+').unwrap_or(s);
        digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit())
    }) {
        return Err("SMSC must be a phone number (digits, optionally with a leading +).".into());
    }
    let secs = crate::timeout_secs(def, 10.0, 120.0)?;
    let reports = match option(def, "STATUS_REPORTS")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("yes" | "1" | "true") => true,
        Some("no" | "0" | "false") => false,
        Some(_) => return Err("STATUS_REPORTS must be yes or no.".into()),
    };
    Ok(Settings {
        reports,
        device: device.to_owned(),
        baud,
        sim_pin,
        mode,
        smsc,
        timeout: Duration::from_secs_f64(secs),
    })
}

/// Checks a modem gateway definition (when it is saved).
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    parse(def).map(|_| ())
}

struct Job {
    settings: Settings,
    phone: String,
    text: String,
    keep: Option<String>,
    /// A job still queued at this instant is not sent any more: its caller has given up.
    start_by: Instant,
    /// Where status reports go: the gateway's name and the registry's receipts.
    receipts: (String, tokio::sync::mpsc::Sender<GatewayReceipt>),
    /// Set to whether the modem gives status reports (after it was started).
    receiving: Arc<AtomicBool>,
    /// The message reference of the part that carries `keep`, when a report was asked for.
    reply: tokio::sync::oneshot::Sender<Result<Option<String>, SendError>>,
}

/// The owner threads, one per device path. Dropping it ends them.
#[derive(Default)]
pub(crate) struct Modems {
    owners: Mutex<HashMap<String, mpsc::SyncSender<Job>>>,
}

pub(crate) struct ModemProvider {
    settings: Settings,
    modems: Arc<Modems>,
    receipts: (String, tokio::sync::mpsc::Sender<GatewayReceipt>),
    receiving: Arc<AtomicBool>,
}

impl ModemProvider {
    pub(crate) fn new(
        def: &GatewayDef,
        modems: Arc<Modems>,
        receipts: tokio::sync::mpsc::Sender<GatewayReceipt>,
    ) -> Result<Self, SendError> {
        Ok(Self {
            settings: parse(def).map_err(SendError::Config)?,
            modems,
            receipts: (def.name.clone(), receipts),
            receiving: Arc::default(),
        })
    }

    /// Whether the modem gives status reports (known once it sent a message).
    pub(crate) fn receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed)
    }

    /// Sends the text; the modem's message reference of the part that carries `keep` when a
    /// status report comes for it.
    pub(crate) async fn send(
        &self,
        phone: &str,
        text: &str,
        keep: Option<&str>,
    ) -> Result<Option<String>, SendError> {
        if !phone.bytes().any(|b| b.is_ascii_digit()) {
            return Err(SendError::Config("The phone number has no digits.".into()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = self.settings.timeout;
        self.modems.submit(Job {
            settings: self.settings.clone(),
            phone: phone.to_owned(),
            text: text.to_owned(),
            keep: keep.map(str::to_owned),
            start_by: Instant::now() + t,
            receipts: self.receipts.clone(),
            receiving: self.receiving.clone(),
            reply: tx,
        })?;
        // Every modem answer is bounded by the timeout, so the owner always replies; this
        // outer bound only guards against a wedged device driver.
        match tokio::time::timeout(t * 32, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SendError::Modem("the modem is busy".into())),
            Err(_) => Err(SendError::Timeout(format!("{}", (t * 32).as_secs_f64()))),
        }
    }
}

impl Modems {
    fn submit(&self, job: Job) -> Result<(), SendError> {
        let mut owners = self
            .owners
            .lock()
            .map_err(|_| SendError::Modem("the modem table is unavailable".into()))?;
        let device = job.settings.device.clone();
        let job = match owners.get(&device) {
            Some(tx) => match tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(_)) => {
                    return Err(SendError::Modem("the modem is busy".into()));
                }
                // The owner thread has ended: start a new one.
                Err(mpsc::TrySendError::Disconnected(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("otpgate-modem".into())
            .spawn(move || owner(&rx))
            .map_err(|_| SendError::Modem("the modem thread could not start".into()))?;
        tx.send(job)
            .map_err(|_| SendError::Modem("the modem thread stopped".into()))?;
        owners.insert(device, tx);
        Ok(())
    }
}

type Port = Box<dyn serialport::SerialPort>;

/// Messages waiting for one modem at most; more are refused as busy at once.
const QUEUE: usize = 16;

/// How long an owner thread waits for the next message before it closes the device and ends.
const IDLE: Duration = Duration::from_secs(300);

/// How often an idle modem that gives status reports is read for them.
const POLL: Duration = Duration::from_millis(250);

/// The owner thread of one device: jobs one after the other, the port kept open between them
/// and reopened after an error or a changed definition; between jobs, the status reports the
/// modem sends (`+CDS`) are read and passed on.
fn owner(rx: &mpsc::Receiver<Job>) {
    let mut open: Option<(Settings, At)> = None;
    let mut sink: Option<(String, tokio::sync::mpsc::Sender<GatewayReceipt>)> = None;
    // The settings whose SIM_PIN the SIM refused: never offered again (three wrong PINs lock
    // the SIM), until the definition changes.
    let mut pin_refused: Option<Settings> = None;
    let mut idle = Duration::ZERO;
    // An idle owner ends and closes the device (a deleted gateway does not hold it forever);
    // the next message starts a new owner.
    loop {
        let listening = open.as_ref().is_some_and(|(_, at)| at.reports);
        let job = match rx.recv_timeout(if listening { POLL } else { IDLE }) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) if listening && idle < IDLE => {
                idle += POLL;
                if let Some((_, at)) = open.as_mut() {
                    at.poll();
                }
                pass_on(&mut open, sink.as_ref());
                continue;
            }
            Err(_) => return,
        };
        idle = Duration::ZERO;
        if job.reply.is_closed() || Instant::now() > job.start_by {
            // The caller has given up: an SMS now would arrive for a login that already failed.
            continue;
        }
        if pin_refused.as_ref() == Some(&job.settings) {
            let _ = job.reply.send(Err(SendError::Modem(PIN_REFUSED.into())));
            continue;
        }
        sink = Some(job.receipts.clone());
        let result = run(&mut open, &job);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "modem send failed; the device is reopened next time");
            open = None;
            if *e == SendError::Modem(PIN_REFUSED.into()) {
                pin_refused = Some(job.settings.clone());
            }
        }
        job.receiving.store(
            open.as_ref().is_some_and(|(_, at)| at.reports),
            Ordering::Relaxed,
        );
        let _ = job.reply.send(result);
        pass_on(&mut open, sink.as_ref());
    }
}

/// Passes the status reports read so far to the service (a full queue drops them: the
/// gateway's `DLR_TIMEOUT` then decides).
fn pass_on(
    open: &mut Option<(Settings, At)>,
    sink: Option<&(String, tokio::sync::mpsc::Sender<GatewayReceipt>)>,
) {
    let (Some((_, at)), Some((gateway, tx))) = (open.as_mut(), sink) else {
        return;
    };
    for (mr, to, st) in at.seen.drain(..) {
        let receipt = GatewayReceipt {
            gateway: gateway.clone(),
            ids: vec![mr.to_string()],
            status: status_name(st).to_owned(),
            to: Some(to).filter(|t| !t.is_empty()),
        };
        if tx.try_send(receipt).is_err() {
            tracing::warn!(gateway = %gateway, "too many delivery receipts waiting: a status report was dropped");
        }
    }
}

/// The receipt state of a TP-ST value (3GPP TS 23.040 §9.2.3.15): 0–2 delivered, 32–63 still
/// trying, 64 and above given up.
fn status_name(st: u8) -> &'static str {
    match st {
        0..=2 => "DELIVRD",
        0x20..=0x3F => "ENROUTE",
        0x40..=0x7F => "UNDELIV",
        _ => "UNKNOWN",
    }
}

const PIN_REFUSED: &str =
    "the SIM refused SIM_PIN; it is not offered again until the gateway definition changes";

fn run(open: &mut Option<(Settings, At)>, job: &Job) -> Result<Option<String>, SendError> {
    let s = &job.settings;
    let kept = match open.take() {
        Some((was, at)) if was == *s => Some(at),
        // Closed before the device is opened again: the open is exclusive.
        _ => None,
    };
    let mut at = match kept {
        Some(at) => at,
        None => {
            // Only a character device is opened (a symlink such as /dev/serial/by-id/… is
            // followed), never a file or a block device.
            use std::os::unix::fs::FileTypeExt;
            let is_char = std::fs::metadata(&s.device)
                .map(|m| m.file_type().is_char_device())
                .map_err(|e| {
                    SendError::Modem(format!("the modem device cannot be opened: {}", e.kind()))
                })?;
            if !is_char {
                return Err(SendError::Modem("DEVICE is not a character device".into()));
            }
            let port = serialport::new(&s.device, s.baud)
                .timeout(Duration::from_millis(50))
                .open()
                .map_err(|e| SendError::Modem(format!("the modem device cannot be opened: {e}")))?;
            let mut at = At {
                port,
                timeout: s.timeout,
                reports: false,
                text_reports: None,
                seen: Vec::new(),
                carry: String::new(),
            };
            at.start(s)?;
            at
        }
    };
    let result = at.send(s, &job.phone, &job.text, job.keep.as_deref());
    *open = Some((s.clone(), at));
    result
}

/// True if text mode carries `text` faithfully: one SMS of characters that are ASCII and in the
/// GSM basic alphabet (the same byte in the modem's default IRA and GSM character sets is not
/// guaranteed beyond that).
/// The whole lines of what was `carried` from the last read and what came now, and what to
/// carry to the next: a line not ended yet, and a `+CDS: <length>` whose PDU line has not
/// come yet. A modem that never ends a line is not kept in memory.
fn whole_lines(carried: &str, new: &str) -> (Vec<String>, String) {
    let text = format!("{carried}{new}");
    let end = text.rfind(['\r', '\n']).map_or(0, |i| i + 1);
    let (whole, rest) = text.split_at(end);
    let mut lines: Vec<String> = whole
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut carry = rest.to_owned();
    if lines
        .last()
        .and_then(|l| l.strip_prefix("+CDS:"))
        .is_some_and(|f| !f.contains(','))
        && let Some(last) = lines.pop()
    {
        carry = format!("{last}\r\n{carry}");
    }
    if carry.len() > 4096 {
        carry.clear();
    }
    (lines, carry)
}

/// The fields of an AT answer, split at commas outside quotes, without the quotes.
fn split_fields(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out.into_iter().map(|f| f.trim().to_owned()).collect()
}

fn fits_text_mode(text: &str) -> bool {
    text.chars().count() <= 160
        && text.chars().all(|c| {
            (c == ' ' || c.is_ascii_alphanumeric() || ".,:;!?-+()/'\"#%&*=<>".contains(c))
                && sms_text::gsm7_septets(c).is_some_and(|s| s.len() == 1)
        })
}

struct At {
    port: Port,
    timeout: Duration,
    /// The modem passes status reports on (`AT+CNMI` with `ds=1` was accepted).
    reports: bool,
    /// Text mode asks for reports (`AT+CSMP` accepted); None: not tried yet.
    text_reports: Option<bool>,
    /// Status reports read and not yet passed on: (TP-MR, the recipient's digits, TP-ST).
    seen: Vec<(u8, String, u8)>,
    /// What `poll` read of a line that had not ended yet.
    carry: String,
}

/// What ends the modem's answer.
#[derive(Clone, Copy)]
enum Until {
    /// `OK`, or an error result.
    Final,
    /// The `> ` prompt of `AT+CMGS`.
    Prompt,
}

impl At {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.port
            .write_all(bytes)
            .and_then(|()| self.port.flush())
            .map_err(|e| SendError::Modem(format!("writing to the modem failed: {}", e.kind())))
    }

    /// Reads until a final result code (`OK`, `ERROR`, `+CMS ERROR: n`, `+CME ERROR: n`) or
    /// the prompt; returns the non-empty lines. Unsolicited lines are kept and ignored.
    fn read(&mut self, until: Until) -> Result<Vec<String>, SendError> {
        let deadline = Instant::now() + self.timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            match self.port.read(&mut chunk) {
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    return Err(SendError::Modem(format!(
                        "reading from the modem failed: {}",
                        e.kind()
                    )));
                }
            }
            let text = String::from_utf8_lossy(&buf);
            let complete: Vec<&str> = text
                .split_inclusive(['\r', '\n'])
                .filter(|l| l.ends_with(['\r', '\n']))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if let Some(err) = complete.iter().find(|l| {
                **l == "ERROR" || l.starts_with("+CMS ERROR") || l.starts_with("+CME ERROR")
            }) {
                let err = format!("the modem answered {err}");
                let lines: Vec<String> = complete.iter().map(|l| (*l).to_owned()).collect();
                self.absorb(&lines);
                return Err(SendError::Modem(err));
            }
            match until {
                Until::Final if complete.contains(&"OK") => {
                    let lines: Vec<String> = complete.into_iter().map(str::to_owned).collect();
                    self.absorb(&lines);
                    return Ok(lines);
                }
                Until::Prompt if text.contains('>') => {
                    let lines: Vec<String> = complete.into_iter().map(str::to_owned).collect();
                    self.absorb(&lines);
                    return Ok(Vec::new());
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(SendError::Timeout(format!(
                    "{}",
                    self.timeout.as_secs_f64()
                )));
            }
        }
    }

    /// Forgets what the modem sent so far (a late answer must not pair with the next command),
    /// keeping the status reports in it.
    fn forget_input(&mut self) {
        if self.reports {
            self.poll();
        }
        let _ = self.port.clear(serialport::ClearBuffer::Input);
    }

    /// Reads what the modem sent unasked and keeps its status reports.
    fn poll(&mut self) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while self.port.bytes_to_read().is_ok_and(|n| n > 0) {
            match self.port.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
            if buf.len() > 64 * 1024 {
                break;
            }
        }
        let (lines, carry) = whole_lines(&self.carry, &String::from_utf8_lossy(&buf));
        self.carry = carry;
        self.absorb(&lines);
    }

    /// Keeps the status reports among `lines`: `+CDS: <length>` and the PDU on the next line
    /// (PDU mode), or `+CDS: <fo>,<mr>,…,<st>` (text mode).
    fn absorb(&mut self, lines: &[String]) {
        let mut it = lines.iter().peekable();
        while let Some(line) = it.next() {
            let Some(rest) = line.strip_prefix("+CDS:") else {
                continue;
            };
            let fields = split_fields(rest);
            let report = if fields.len() == 1 {
                it.next().and_then(|pdu| pdu::status_report(pdu))
            } else {
                // <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>
                let mr = fields.get(1).and_then(|f| f.parse::<u8>().ok());
                let to: String = fields
                    .get(2)
                    .map(|f| f.chars().filter(char::is_ascii_digit).collect())
                    .unwrap_or_default();
                let st = fields.last().and_then(|f| f.parse::<u8>().ok());
                mr.zip(st).map(|(mr, st)| (mr, to, st))
            };
            if let Some(r) = report
                && self.seen.len() < 1024
            {
                self.seen.push(r);
            }
        }
    }

    /// Ends a message the modem may still be waiting for (ESC cancels `AT+CMGS` input).
    fn cancel(&mut self) {
        let _ = self.write(&[0x1B]);
    }

    /// After opening: cancel whatever an earlier, interrupted session left the modem waiting
    /// for, let it answer, and forget the answer.
    fn reset_line(&mut self) {
        let _ = self.write(b"\x1b\r");
        let until = Instant::now() + Duration::from_millis(200);
        let mut chunk = [0u8; 256];
        while Instant::now() < until {
            if self.port.read(&mut chunk).is_err() {
                continue;
            }
        }
        self.forget_input();
    }

    fn command(&mut self, cmd: &str) -> Result<Vec<String>, SendError> {
        self.forget_input();
        self.write(format!("{cmd}\r").as_bytes())?;
        self.read(Until::Final)
    }

    fn start(&mut self, s: &Settings) -> Result<(), SendError> {
        self.reset_line();
        self.command("AT")?;
        self.command("ATE0")?;
        let pin = self.command("AT+CPIN?")?;
        if pin.iter().any(|l| l.trim() == "+CPIN: SIM PIN") {
            let code = s.sim_pin.as_deref().ok_or_else(|| {
                SendError::Modem("the SIM asks for a PIN, but SIM_PIN is not set".into())
            })?;
            self.command(&format!("AT+CPIN=\"{code}\""))
                .map_err(|_| SendError::Modem(PIN_REFUSED.into()))?;
        } else if !pin.iter().any(|l| l.contains("READY")) {
            return Err(SendError::Modem(
                "the SIM is not ready (it may need its PUK)".into(),
            ));
        }
        let reg = self.command("AT+CREG?")?;
        let registered = reg.iter().any(|l| {
            l.strip_prefix("+CREG:")
                .and_then(|v| v.split(',').nth(1))
                .is_some_and(|stat| matches!(stat.trim(), "1" | "5"))
        });
        if !registered {
            return Err(SendError::Modem(
                "the modem is not registered in a network".into(),
            ));
        }
        // Status reports as +CDS where the modem offers them (ds=1); a modem that refuses
        // sends without.
        self.reports = s.reports && self.command("AT+CNMI=2,1,0,1,0").is_ok();
        Ok(())
    }

    /// Sends one submitted part: the command, the prompt, the body and Ctrl-Z, the `+CMGS`.
    fn submit(&mut self, command: &str, body: &[u8]) -> Result<Option<u8>, SendError> {
        self.forget_input();
        self.write(format!("{command}\r").as_bytes())?;
        let mut bytes = body.to_vec();
        bytes.push(0x1A);
        if let Err(e) = self.read(Until::Prompt).and_then(|_| self.write(&bytes)) {
            self.cancel();
            return Err(e);
        }
        let lines = self.read(Until::Final)?;
        if let Some(l) = lines.iter().find(|l| l.starts_with("+CMGS")) {
            // `+CMGS: <mr>`, or `+CMGS: <mr>,<ackpdu>`.
            Ok(l.trim_start_matches("+CMGS:")
                .split(',')
                .next()
                .and_then(|mr| mr.trim().parse::<u8>().ok()))
        } else {
            Err(SendError::Modem(
                "the modem did not confirm the message".into(),
            ))
        }
    }

    fn send(
        &mut self,
        s: &Settings,
        phone: &str,
        text: &str,
        keep: Option<&str>,
    ) -> Result<Option<String>, SendError> {
        let text_mode = match s.mode {
            Mode::Text => true,
            Mode::Pdu => false,
            Mode::Auto => fits_text_mode(text),
        };
        if text_mode {
            if !fits_text_mode(text) {
                return Err(SendError::Modem(
                    "text mode sends one SMS of ASCII characters of the GSM alphabet; use MODE pdu or auto"
                        .into(),
                ));
            }
            self.command("AT+CMGF=1")?;
            if let Some(smsc) = &s.smsc {
                self.command(&format!("AT+CSCA=\"{smsc}\""))?;
            }
            // fo 49: SMS-SUBMIT, a relative validity period, a status report asked for.
            if self.reports && self.text_reports.is_none() {
                self.text_reports = Some(self.command("AT+CSMP=49,167,0,0").is_ok());
            }
            let number: String = phone
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            let mr = self.submit(&format!("AT+CMGS=\"{number}\""), text.as_bytes())?;
            return Ok(mr
                .filter(|_| self.text_reports == Some(true))
                .map(|m| m.to_string()));
        }
        self.command("AT+CMGF=0")?;
        let reference = u8::try_from(
            phone
                .bytes()
                .chain(text.bytes())
                .map(u32::from)
                .sum::<u32>()
                % 256,
        )
        .unwrap_or(0);
        // The report is asked for the part that carries the code (the last when none does).
        let carrier = keep.filter(|k| !k.is_empty()).and_then(|k| {
            sms_text::split(text, Some(k))
                .1
                .iter()
                .position(|p| p.contains(k))
        });
        let (enc, parts) = sms_text::encode_parts(text, keep, reference);
        let carrier = carrier.unwrap_or(parts.len().saturating_sub(1));
        let mut id = None;
        for (i, part) in parts.into_iter().enumerate() {
            let report = self.reports && i == carrier;
            let tpdu = pdu::submit(phone, &part.udh, &part.data, enc == Encoding::Ucs2, report);
            let mut whole = pdu::smsc(s.smsc.as_deref());
            whole.extend_from_slice(&tpdu);
            let mr = self.submit(
                &format!("AT+CMGS={}", tpdu.len()),
                pdu::hex(&whole).as_bytes(),
            )?;
            if report {
                id = mr.map(|m| m.to_string());
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_hellohello_pdu() {
        // The well-known example "hellohello" to +46708251358 (here without a validity period).
        let septets = sms_text::encode_gsm7("hellohello").unwrap();
        let mut whole = pdu::smsc(None);
        whole.extend(pdu::submit("+46708251358", &[], &septets, false, false));
        assert_eq!(
            pdu::hex(&whole),
            "0001000B916407281553F800000AE8329BFD4697D9EC37"
        );
    }

    #[test]
    fn ucs2_udh_fill_bits_and_smsc() {
        let tpdu = pdu::submit(
            "0171",
            &[5, 0, 3, 9, 2, 1],
            &sms_text::encode_ucs2("Ж"),
            true,
            false,
        );
        assert_eq!(pdu::hex(&tpdu), "4100048110170008080500030902010416");
        // GSM-7 after a 6-octet header: one fill bit, and UDL counts the header's 7 septets.
        let tpdu = pdu::submit("+1", &[5, 0, 3, 9, 2, 1], &[0x41], false, false);
        assert_eq!(pdu::hex(&tpdu), "41000191F100000805000309020182");
        assert_eq!(pdu::smsc(Some("+4917")), vec![3, 0x91, 0x94, 0x71]);
        assert_eq!(pdu::smsc(Some("")), vec![0]);
    }

    #[test]
    fn text_mode_takes_only_what_it_carries_faithfully() {
        assert!(fits_text_mode("Your code: 123456 (valid 5 min)"));
        for bad in [
            "Code 123456 {x}",
            "Code 123456 @",
            "Ж 123456",
            "café 123456",
        ] {
            assert!(!fits_text_mode(bad), "{bad}");
        }
        assert!(!fits_text_mode(&"1".repeat(161)));
    }

    #[test]
    fn settings_are_checked() {
        let def = |opts: &[(&str, &str)]| crate::test_def("modem", opts);
        let dev = ("DEVICE", "/dev/ttyUSB0");
        assert!(validate(&def(&[dev])).is_ok());
        assert!(validate(&def(&[dev, ("MODE", "text"), ("SMSC", "+4917")])).is_ok());
        assert!(validate(&def(&[dev, ("MODE", "auto")])).is_ok());
        for bad in [
            vec![],
            vec![("DEVICE", "/etc/passwd")],
            vec![("DEVICE", "/dev/tty/../../etc/passwd")],
            vec![("DEVICE", "/dev/watchdog")],
            vec![("DEVICE", "/dev/sda")],
            vec![dev, ("MODE", "fax")],
            vec![dev, ("SIM_PIN", "12a4")],
            vec![dev, ("SIM_PIN", "123")],
            vec![dev, ("BAUDRATE", "fast")],
            vec![dev, ("SMSC", "+49\";AT+CFUN=0")],
            vec![dev, ("TIMEOUT", "0")],
        ] {
            assert!(validate(&def(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_reports_and_answer_fields() {
        // SMSC field 07 91 94 71 ..., first octet 06, MR 0x2A, RA 13 digits, SCTS, DT, ST 0.
        let hex = "07919471000000F0062A0D91945151000000F0622150210000406221502100004000";
        assert_eq!(
            pdu::status_report(hex),
            Some((0x2A, "4915150000000".to_owned(), 0))
        );
        // Not a status report (an SMS-DELIVER), odd or foreign hex: none.
        assert_eq!(pdu::status_report("0004"), None);
        assert_eq!(pdu::status_report("0006"), None);
        assert_eq!(pdu::status_report("00062"), None);
        assert_eq!(pdu::status_report("zz"), None);
        assert_eq!(
            split_fields(" 6,12,\"+49151,0\",145,\"26/12/05,12:00:00+04\",0"),
            vec!["6", "12", "+49151,0", "145", "26/12/05,12:00:00+04", "0"]
        );
        // A text-mode report cut after its status's first digit waits for the rest (status
        // 100 is a failure, 1 would be a delivery); a PDU-mode header waits for its PDU.
        let (lines, carry) = whole_lines("", "\r\n+CDS: 6,12,\"+49151\",145,\"a\",\"b\",1");
        assert!(lines.is_empty());
        let (lines, carry) = whole_lines(&carry, "00\r\n");
        assert_eq!(lines, vec!["+CDS: 6,12,\"+49151\",145,\"a\",\"b\",100"]);
        assert!(carry.is_empty());
        let (lines, carry) = whole_lines("", "+CDS: 25\r\n");
        assert!(lines.is_empty() && carry.starts_with("+CDS: 25"));
        let (lines, _) = whole_lines(&carry, "0006\r\n");
        assert_eq!(lines, vec!["+CDS: 25", "0006"]);
        assert_eq!(status_name(0), "DELIVRD");
        assert_eq!(status_name(0x21), "ENROUTE");
        assert_eq!(status_name(0x41), "UNDELIV");
    }
}
