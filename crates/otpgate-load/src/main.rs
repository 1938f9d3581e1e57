//! `otpgate-load`: drives the two-step SMS login against a privacyIDEA-compatible server and
//! prints the figures (and writes them as JSON).

// Indexing a serde_json::Value never panics (a missing key is Null); the report is read so.
#![allow(clippy::indexing_slicing)]

use clap::Parser;
use otpgate_load::{Mode, Options};
use std::time::Duration;

/// Load generator for privacyIDEA-compatible SMS OTP servers (the whole loop, with its own
/// receiving SMS gateway). Users as `../shared/peer/setup_peer.py` creates them.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The server under test; given more than once, the nodes of a cluster, which get the
    /// requests in turn.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    base_url: Vec<String>,
    /// Where this generator's SMS gateway listens; point the server's gateway URL here.
    #[arg(long, default_value = "127.0.0.1:5071")]
    gateway_listen: std::net::SocketAddr,
    /// Users user0000 … user<N-1>.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// The first user index.
    #[arg(long, default_value_t = 0)]
    user_offset: usize,
    /// Concurrent flows (at most --users).
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 20.0)]
    duration: f64,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// txid, pinotp, step1 or step2.
    #[arg(long, default_value = "txid")]
    mode: String,
    /// User name prefix.
    #[arg(long, default_value = "user")]
    user_prefix: String,
    /// PIN = prefix + user name.
    #[arg(long, default_value = "pin")]
    pin_prefix: String,
    /// Phone = prefix + 7-digit user index.
    #[arg(long, default_value = "+49151")]
    phone_prefix: String,
    /// Seconds to wait for an SMS.
    #[arg(long, default_value_t = 3.0)]
    sms_wait: f64,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// The server's PID (CPU and RSS, with its children: for several nodes, a process that
    /// started them).
    #[arg(long)]
    server_pid: Option<u32>,
    /// A file with the server's PID.
    #[arg(long)]
    server_pid_file: Option<std::path::PathBuf>,
    /// Write the figures as JSON here (`-` = standard output).
    #[arg(long)]
    json: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mode = Mode::parse(&a.mode)
        .ok_or_else(|| anyhow::anyhow!("--mode must be txid, pinotp, step1 or step2"))?;
    let server_pid = match (a.server_pid, &a.server_pid_file) {
        (Some(p), _) => Some(p),
        (None, Some(f)) => Some(std::fs::read_to_string(f)?.trim().parse()?),
        (None, None) => None,
    };
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let report = otpgate_load::run(Options {
        base_urls: a
            .base_url
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect(),
        gateway_listen: a.gateway_listen,
        users: a.users,
        user_offset: a.user_offset,
        concurrency: a.concurrency,
        duration: secs(a.duration),
        warmup: secs(a.warmup),
        mode,
        user_prefix: a.user_prefix,
        pin_prefix: a.pin_prefix,
        phone_prefix: a.phone_prefix,
        sms_wait: secs(a.sms_wait),
        timeout: secs(a.timeout),
        server_pid,
    })
    .await?;
    let j = &report.json;
    println!(
        "{} c={} users={}: {} completed in {} s = {} /s, {} errors",
        j["mode"],
        j["concurrency"],
        j["users"],
        j["completed"],
        j["duration_s"],
        j["rate_per_s"],
        report.errors
    );
    for step in ["step1", "sms", "step2", "flow"] {
        let l = &j["latency_ms"][step];
        if l["n"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  {step:<6} p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                l["p50"], l["p95"], l["p99"], l["max"]
            );
        }
    }
    println!("  cpu {}", j["cpu"]);
    if !j["server_rss_max_mib"].is_null() {
        println!(
            "  server RSS max {} MiB (anonymous max {} MiB)",
            j["server_rss_max_mib"], j["server_rss_anon_max_mib"]
        );
    }
    if let Some(errors) = j["errors"].as_object() {
        for (k, v) in errors {
            println!("  error {k}: {} (e.g. {})", v["count"], v["sample"]);
        }
    }
    match a.json.as_deref() {
        Some("-") => println!("{}", serde_json::to_string_pretty(j)?),
        Some(path) => std::fs::write(path, serde_json::to_string_pretty(j)?)?,
        None => {}
    }
    if report.completed == 0 {
        anyhow::bail!("no flow completed (see the errors above)");
    }
    Ok(())
}
