//! A load generator for privacyIDEA-compatible SMS OTP servers that measures the whole loop:
//! step 1 (`/validate/check` with the PIN), the SMS arriving at the generator's own HTTP SMS
//! gateway, and step 2 (`transaction_id` + OTP, or PIN+OTP). It speaks only the public API, so
//! it drives otpgate and privacyIDEA alike (users set up by `../shared/peer/setup_peer.py` or
//! the same naming: `user0000`…, PIN `pin<user>`, phone `+49151` + 7 digits).
//!
//! Each worker owns its users (worker `w` takes users `w`, `w + c`, …), so concurrent flows
//! never share a token. Latencies are per step and per flow; errors are counted by kind with
//! one sample; CPU of this process and of the server (and its children) comes from `/proc`.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Step 1, SMS, step 2 with `transaction_id` + OTP.
    Txid,
    /// Step 1, SMS, step 2 with PIN+OTP.
    Pinotp,
    /// Step 1 and the SMS only (challenge creation).
    Step1,
    /// Step 2 only: untimed rounds of challenges for every user, then a timed burst of
    /// `transaction_id` + OTP answers; only the bursts count.
    Step2,
}

impl Mode {
    /// Parses `txid`, `pinotp`, `step1` or `step2`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "txid" => Mode::Txid,
            "pinotp" => Mode::Pinotp,
            "step1" => Mode::Step1,
            "step2" | "step2-txid" => Mode::Step2,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Txid => "txid",
            Mode::Pinotp => "pinotp",
            Mode::Step1 => "step1",
            Mode::Step2 => "step2",
        }
    }
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server under test: one base URL, or the nodes of a cluster (requests go to them in
    /// turn, so a login's two steps may reach different nodes, as behind a load balancer).
    pub base_urls: Vec<String>,
    /// Where the generator's SMS gateway listens (the server's gateway URL points here).
    pub gateway_listen: SocketAddr,
    /// Users `user_offset`…`user_offset + users - 1`.
    pub users: usize,
    /// The first user index.
    pub user_offset: usize,
    /// Concurrent flows (at most `users`).
    pub concurrency: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// What to measure.
    pub mode: Mode,
    /// User name prefix (`user`).
    pub user_prefix: String,
    /// PIN = prefix + user name (`pin`).
    pub pin_prefix: String,
    /// Phone = prefix + 7-digit index (`+49151`).
    pub phone_prefix: String,
    /// How long to wait for an SMS.
    pub sms_wait: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The server's process (CPU and RSS, with its children).
    pub server_pid: Option<u32>,
}

/// The SMS the gateway received, by phone: OTPs not yet taken.
#[derive(Debug, Default)]
pub struct Inbox {
    otps: Mutex<HashMap<String, VecDeque<String>>>,
    arrived: Notify,
    received: std::sync::atomic::AtomicU64,
}

impl Inbox {
    fn put(&self, phone: &str, otp: String) {
        if let Ok(mut m) = self.otps.lock() {
            m.entry(phone.to_owned()).or_default().push_back(otp);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        self.arrived.notify_waiters();
    }

    fn clear(&self, phone: &str) {
        if let Ok(mut m) = self.otps.lock() {
            m.remove(phone);
        }
    }

    fn pop(&self, phone: &str) -> Option<String> {
        self.otps.lock().ok()?.get_mut(phone)?.pop_front()
    }

    /// The oldest OTP not yet taken for `phone`, waiting up to `wait`.
    async fn take(&self, phone: &str, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(otp) = self.pop(phone) {
                return Some(otp);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pop(phone);
            }
        }
    }

    /// SMS received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// The first run of 4–10 digits in a text.
fn otp_of(text: &str) -> Option<String> {
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if (4..=10).contains(&run.len()) {
                return Some(run);
            }
            run.clear();
        }
    }
    None
}

/// Starts the SMS gateway: any path, GET or POST, form, query or JSON; the phone from `to` or
/// `phone`, the text from `text`, `Body` or `message`; answers `ID <n>`.
pub async fn start_gateway(listen: SocketAddr) -> Result<(SocketAddr, Arc<Inbox>)> {
    let inbox = Arc::new(Inbox::default());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the SMS gateway to {listen}"))?;
    let addr = listener.local_addr()?;
    let state = inbox.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let inbox = state.clone();
        async move {
            let mut params: HashMap<String, String> = HashMap::new();
            let mut add = |k: String, v: String| {
                params.entry(k).or_insert(v);
            };
            if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&body) {
                for (k, v) in m {
                    add(k, v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                }
            } else {
                for (k, v) in url_pairs(&body) {
                    add(k, v);
                }
            }
            for (k, v) in url_pairs(uri.query().unwrap_or_default().as_bytes()) {
                add(k, v);
            }
            let phone = ["to", "phone"].iter().find_map(|k| params.get(*k)).cloned();
            let text = ["text", "Body", "message"]
                .iter()
                .find_map(|k| params.get(*k))
                .cloned();
            match (phone, text.as_deref().and_then(otp_of)) {
                (Some(phone), Some(otp)) => {
                    inbox.put(&phone, otp);
                    (
                        axum::http::StatusCode::OK,
                        format!("ID {}", inbox.received()),
                    )
                }
                _ => (
                    axum::http::StatusCode::BAD_REQUEST,
                    "ERR no phone or OTP".to_owned(),
                ),
            }
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, inbox))
}

/// `application/x-www-form-urlencoded` pairs (also query strings).
fn url_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    step1: Vec<f64>,
    sms: Vec<f64>,
    step2: Vec<f64>,
    flow: Vec<f64>,
    completed: u64,
    errors: BTreeMap<String, (u64, String)>,
}

impl Tally {
    fn error(&mut self, kind: &str, sample: String) {
        let e = self.errors.entry(kind.to_owned()).or_insert((0, sample));
        e.0 += 1;
    }

    fn merge(&mut self, o: Tally) {
        self.step1.extend(o.step1);
        self.sms.extend(o.sms);
        self.step2.extend(o.step2);
        self.flow.extend(o.flow);
        self.completed += o.completed;
        for (k, (n, sample)) in o.errors {
            let e = self.errors.entry(k).or_insert((0, sample));
            e.0 += n;
        }
    }
}

struct Shared {
    opts: Options,
    client: reqwest::Client,
    inbox: Arc<Inbox>,
    recording: AtomicBool,
    stop: AtomicBool,
    /// How many requests went out (the next one goes to base URL `sent % len`).
    sent: AtomicUsize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Shared {
    fn user(&self, i: usize) -> (String, String, String) {
        let n = self.opts.user_offset + i;
        let user = format!("{}{n:04}", self.opts.user_prefix);
        let pin = format!("{}{user}", self.opts.pin_prefix);
        let phone = format!("{}{n:07}", self.opts.phone_prefix);
        (user, pin, phone)
    }

    /// One `/validate/check`; the envelope, or the error kind and a sample.
    async fn check(&self, form: &[(&str, &str)]) -> std::result::Result<Value, (String, String)> {
        let urls = &self.opts.base_urls;
        let base = urls
            .get(self.sent.fetch_add(1, Ordering::Relaxed) % urls.len().max(1))
            .ok_or_else(|| ("options".to_owned(), "no base URL".to_owned()))?;
        let r = self
            .client
            .post(format!("{base}/validate/check"))
            .form(form)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() { "timeout" } else { "connect" };
                (kind.to_owned(), e.to_string())
            })?;
        let status = r.status().as_u16();
        let body: Value = r
            .json()
            .await
            .map_err(|e| ("bad_body".to_owned(), e.to_string()))?;
        if status != 200 {
            return Err((format!("http_{status}"), body.to_string()));
        }
        Ok(body)
    }

    /// Step 1 and the SMS: (transaction id, OTP).
    async fn challenge(
        &self,
        user: &str,
        pin: &str,
        phone: &str,
        t: &mut Tally,
    ) -> Option<(String, String)> {
        self.inbox.clear(phone);
        let started = Instant::now();
        let b = match self.check(&[("user", user), ("pass", pin)]).await {
            Ok(b) => b,
            Err((k, s)) => {
                t.error(&format!("step1_{k}"), s);
                return None;
            }
        };
        let Some(tid) = b
            .pointer("/detail/transaction_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            t.error("step1_no_challenge", b.to_string());
            return None;
        };
        let step1 = started.elapsed();
        let Some(otp) = self.inbox.take(phone, self.opts.sms_wait).await else {
            t.error("sms_timeout", format!("no SMS for {phone}"));
            return None;
        };
        if self.recording.load(Ordering::Relaxed) {
            t.step1.push(ms(step1));
            t.sms.push(ms(started.elapsed() - step1));
        }
        Some((tid, otp))
    }

    async fn answer(&self, user: &str, form: &[(&str, &str)], t: &mut Tally) -> bool {
        let started = Instant::now();
        match self.check(form).await {
            Ok(b) if b.pointer("/result/value") == Some(&Value::Bool(true)) => {
                if self.recording.load(Ordering::Relaxed) {
                    t.step2.push(ms(started.elapsed()));
                }
                true
            }
            Ok(b) => {
                t.error("step2_rejected", format!("{user}: {b}"));
                false
            }
            Err((k, s)) => {
                t.error(&format!("step2_{k}"), s);
                false
            }
        }
    }

    /// Full flows (or step 1 only) until stopped.
    async fn flows(&self, worker: usize) -> Tally {
        let mut t = Tally::default();
        let mine: Vec<usize> = (worker..self.opts.users)
            .step_by(self.opts.concurrency)
            .collect();
        let mut next = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(&i) = mine.get(next % mine.len().max(1)) else {
                break;
            };
            next += 1;
            let (user, pin, phone) = self.user(i);
            let recording = self.recording.load(Ordering::Relaxed);
            let started = Instant::now();
            let Some((tid, otp)) = self.challenge(&user, &pin, &phone, &mut t).await else {
                continue;
            };
            let ok = match self.opts.mode {
                Mode::Step1 => true,
                Mode::Pinotp => {
                    let pass = format!("{pin}{otp}");
                    self.answer(&user, &[("user", &user), ("pass", &pass)], &mut t)
                        .await
                }
                _ => {
                    self.answer(
                        &user,
                        &[("user", &user), ("transaction_id", &tid), ("pass", &otp)],
                        &mut t,
                    )
                    .await
                }
            };
            if ok && recording && self.recording.load(Ordering::Relaxed) {
                t.flow.push(ms(started.elapsed()));
                t.completed += 1;
            }
        }
        t
    }
}

/// The measured figures.
#[derive(Debug, Clone)]
pub struct Report {
    /// Everything, as JSON (see the README).
    pub json: Value,
    /// Completed flows (or step-2 answers) in the measured time.
    pub completed: u64,
    /// Errors of all kinds.
    pub errors: u64,
}

fn summary(v: &mut [f64]) -> Value {
    if v.is_empty() {
        return json!({"n": 0});
    }
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let k = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v.get(k).copied().unwrap_or_default()
    };
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "n": v.len(), "mean": round(mean), "p50": round(pct(50.0)), "p95": round(pct(95.0)),
        "p99": round(pct(99.0)), "max": round(v.last().copied().unwrap_or_default()),
    })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// CPU seconds (user + system) of a process and its direct children, from `/proc`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = |stat: &str| -> Option<(u32, u64)> {
        // Fields after the command (which may contain spaces) start after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1)?.parse().ok()?;
        let utime: u64 = f.get(11)?.parse().ok()?;
        let stime: u64 = f.get(12)?.parse().ok()?;
        Some((ppid, utime + stime))
    };
    let own = ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?.1;
    let mut total = own;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Ok(stat) = std::fs::read_to_string(e.path().join("stat"))
                && let Some((ppid, t)) = ticks(&stat)
                && ppid == pid
            {
                total += t;
            }
        }
    }
    // USER_HZ is 100 on Linux.
    Some(total as f64 / 100.0)
}

/// Resident memory (MiB) of a process and its direct children.
pub fn rss_mib(pid: u32) -> Option<f64> {
    resident(pid).map(|r| r.total)
}

/// Resident memory (MiB) of a process and its direct children: all of it (`VmRSS`) and the
/// anonymous part (`RssAnon`: heap, stacks, buffers). The rest are file pages (the program's
/// code and libraries), clean and shared with the page cache: how much of a binary's code is
/// resident depends on how the kernel maps and reads ahead around each page fault.
pub fn resident(pid: u32) -> Option<Resident> {
    let rss = |p: &std::path::Path| -> Option<(u32, Resident)> {
        let status = std::fs::read_to_string(p.join("status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        };
        let mib = |name: &str| field(name)?.parse::<f64>().ok().map(|kb| kb / 1024.0);
        let ppid: u32 = field("PPid:")?.parse().ok()?;
        Some((
            ppid,
            Resident {
                total: mib("VmRSS:")?,
                anon: mib("RssAnon:")?,
            },
        ))
    };
    let mut sum = rss(std::path::Path::new(&format!("/proc/{pid}")))?.1;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some((ppid, r)) = rss(&e.path())
                && ppid == pid
            {
                sum.total += r.total;
                sum.anon += r.anon;
            }
        }
    }
    Some(sum)
}

/// What [`resident`] reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resident {
    /// `VmRSS`, MiB.
    pub total: f64,
    /// `RssAnon`, MiB.
    pub anon: f64,
}

/// Runs the load with an SMS gateway already started (`inbox`).
pub async fn run_with(opts: Options, inbox: Arc<Inbox>) -> Result<Report> {
    anyhow::ensure!(opts.users > 0, "--users must be at least 1");
    anyhow::ensure!(!opts.base_urls.is_empty(), "--base-url: at least one");
    let mut opts = opts;
    opts.concurrency = opts.concurrency.clamp(1, opts.users);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(opts.timeout)
        .pool_max_idle_per_host(opts.concurrency * 2)
        .build()?;
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        client,
        inbox,
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        sent: AtomicUsize::new(0),
    });
    let own_pid = std::process::id();
    let rss_max = Arc::new(Mutex::new(Resident::default()));
    let sampler = opts.server_pid.map(|pid| {
        let rss_max = rss_max.clone();
        tokio::spawn(async move {
            loop {
                if let (Some(v), Ok(mut m)) = (resident(pid), rss_max.lock()) {
                    m.total = m.total.max(v.total);
                    m.anon = m.anon.max(v.anon);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });
    let (tally, measured) = if opts.mode == Mode::Step2 {
        step2_rounds(&shared).await
    } else {
        let workers: Vec<_> = (0..opts.concurrency)
            .map(|w| {
                let s = shared.clone();
                tokio::spawn(async move { s.flows(w).await })
            })
            .collect();
        tokio::time::sleep(opts.warmup).await;
        let cpu0 = (cpu_seconds(own_pid), opts.server_pid.and_then(cpu_seconds));
        shared.recording.store(true, Ordering::SeqCst);
        let started = Instant::now();
        tokio::time::sleep(opts.duration).await;
        shared.recording.store(false, Ordering::SeqCst);
        let measured = started.elapsed();
        let cpu1 = (cpu_seconds(own_pid), opts.server_pid.and_then(cpu_seconds));
        shared.stop.store(true, Ordering::SeqCst);
        let mut total = Tally::default();
        for w in workers {
            total.merge(w.await?);
        }
        (total, (measured, cpu0, cpu1))
    };
    if let Some(s) = sampler {
        s.abort();
    }
    let (elapsed, cpu0, cpu1) = measured;
    let mut t = tally;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round(b - a));
    let load_cpu = delta(cpu0.0, cpu1.0);
    let server_cpu = delta(cpu0.1, cpu1.1);
    let errors: u64 = t.errors.values().map(|(n, _)| n).sum();
    let json = json!({
        "mode": opts.mode.name(), "users": opts.users, "concurrency": opts.concurrency,
        "nodes": opts.base_urls.len(),
        "duration_s": round(secs), "completed": t.completed,
        "rate_per_s": round(t.completed as f64 / secs),
        "latency_ms": {
            "step1": summary(&mut t.step1), "sms": summary(&mut t.sms),
            "step2": summary(&mut t.step2), "flow": summary(&mut t.flow),
        },
        "errors": t.errors.iter().map(|(k, (n, s))| (k.clone(), json!({"count": n, "sample": s.chars().take(300).collect::<String>()}))).collect::<serde_json::Map<_, _>>(),
        "cpu": {
            "loadgen_cpu_s": load_cpu, "server_cpu_s": server_cpu,
            "server_cpu_ms_per_flow": server_cpu.filter(|_| t.completed > 0).map(|c| round(c * 1000.0 / t.completed as f64)),
            "loadgen_share_of_machine": load_cpu.map(|c| round(c / secs / std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64))),
        },
        "server_rss_max_mib": opts.server_pid.and_then(|_| rss_max.lock().ok().map(|m| round(m.total))),
        "server_rss_anon_max_mib": opts.server_pid.and_then(|_| rss_max.lock().ok().map(|m| round(m.anon))),
    });
    Ok(Report {
        json,
        completed: t.completed,
        errors,
    })
}

type Window = (
    Duration,
    (Option<f64>, Option<f64>),
    (Option<f64>, Option<f64>),
);

/// Step-2 mode: rounds of untimed challenges for every user, then a timed burst of answers.
async fn step2_rounds(shared: &Arc<Shared>) -> (Tally, Window) {
    let opts = &shared.opts;
    let mut total = Tally::default();
    let mut measured = Duration::ZERO;
    let own = std::process::id();
    let (mut cpu_load, mut cpu_server) = (0.0, 0.0);
    let warm_until = Instant::now() + opts.warmup;
    while measured < opts.duration {
        // Untimed: a challenge for every user.
        let prep: Vec<_> = (0..opts.concurrency)
            .map(|w| {
                let s = shared.clone();
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    let mut ready = Vec::new();
                    for i in (w..s.opts.users).step_by(s.opts.concurrency) {
                        let (user, pin, phone) = s.user(i);
                        if let Some((tid, otp)) = s.challenge(&user, &pin, &phone, &mut t).await {
                            ready.push((user, tid, otp));
                        }
                    }
                    (t, ready)
                })
            })
            .collect();
        let mut batches = Vec::new();
        for p in prep {
            if let Ok((t, ready)) = p.await {
                total.merge(Tally {
                    errors: t.errors,
                    ..Tally::default()
                });
                batches.push(ready);
            }
        }
        // Not one challenge (users not set up, a wrong PIN, no SMS): there is nothing to
        // answer, ever; stop with the errors instead of going round for good.
        if batches.iter().all(Vec::is_empty) {
            break;
        }
        let timed = Instant::now() >= warm_until;
        shared.recording.store(timed, Ordering::SeqCst);
        let c0 = (cpu_seconds(own), opts.server_pid.and_then(cpu_seconds));
        let started = Instant::now();
        let bursts: Vec<_> = batches
            .into_iter()
            .map(|ready| {
                let s = shared.clone();
                tokio::spawn(async move {
                    let mut t = Tally::default();
                    for (user, tid, otp) in ready {
                        if s.answer(
                            &user,
                            &[("user", &user), ("transaction_id", &tid), ("pass", &otp)],
                            &mut t,
                        )
                        .await
                            && s.recording.load(Ordering::Relaxed)
                        {
                            t.completed += 1;
                        }
                    }
                    t
                })
            })
            .collect();
        for b in bursts {
            if let Ok(t) = b.await {
                total.merge(t);
            }
        }
        let burst = started.elapsed();
        let c1 = (cpu_seconds(own), opts.server_pid.and_then(cpu_seconds));
        shared.recording.store(false, Ordering::SeqCst);
        if timed {
            measured += burst;
            cpu_load += c1.0.zip(c0.0).map_or(0.0, |(b, a)| b - a);
            cpu_server += c1.1.zip(c0.1).map_or(0.0, |(b, a)| b - a);
        }
    }
    let server = opts.server_pid.map(|_| (0.0, cpu_server));
    (
        total,
        (
            measured,
            (Some(0.0), server.map(|s| s.0)),
            (Some(cpu_load), server.map(|s| s.1)),
        ),
    )
}

/// Starts the gateway on `opts.gateway_listen` and runs the load.
pub async fn run(opts: Options) -> Result<Report> {
    let (_, inbox) = start_gateway(opts.gateway_listen).await?;
    run_with(opts, inbox).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otps_and_form_pairs() {
        assert_eq!(otp_of("Your OTP is 123456.").as_deref(), Some("123456"));
        assert_eq!(otp_of("12 then 87654321").as_deref(), Some("87654321"));
        assert_eq!(otp_of("no digits"), None);
        assert_eq!(
            url_pairs(b"to=%2B49151&text=Your+OTP+is+1234"),
            vec![
                ("to".to_owned(), "+49151".to_owned()),
                ("text".to_owned(), "Your OTP is 1234".to_owned())
            ]
        );
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        let s = summary(&mut v);
        assert_eq!(
            (s["p50"].as_f64(), s["max"].as_f64()),
            (Some(2.0), Some(4.0))
        );
    }
}
