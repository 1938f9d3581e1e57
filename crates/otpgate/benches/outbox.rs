//! Outbox delivery throughput: the real `otpgate` binary drains N queued SMS notifications
//! through its outbox worker to a local HTTP gateway (otpgate-load's receiving gateway). The
//! items are queued straight into the database, as another node's event handlers would queue
//! them, in one transaction; the figure is the rate from the first SMS the gateway received
//! to the last, and the node's CPU per SMS.
//!
//! `cargo bench -p otpgate --bench outbox [-- N [CONCURRENCY...]]` (defaults 10000, 4 16);
//! `OUTBOX_BENCH_DB=postgres://…` (a server's admin URL, as `TEST_POSTGRES_URL`) drains from
//! a throw-away PostgreSQL database per run instead of the default SQLite file.

// `value["key"]` on a serde_json Value yields Null for a missing key; it does not panic.
#![allow(clippy::indexing_slicing)]

use anyhow::{Context, Result, bail};
use otpgate_core::clock::Clock;
use otpgate_store::{NewOutboxItem, Store};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn form(
    http: &reqwest::Client,
    url: &str,
    jwt: Option<&str>,
    pairs: &[(&str, &str)],
) -> Result<Value> {
    let mut rb = http.post(url).form(pairs);
    if let Some(j) = jwt {
        rb = rb.header("Authorization", j);
    }
    let v: Value = rb.send().await?.json().await?;
    if v["result"]["status"] != true {
        bail!("{url}: {v}");
    }
    Ok(v)
}

async fn run(n: usize, concurrency: u32, db: Option<&str>) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let (gw, inbox) = otpgate_load::start_gateway("127.0.0.1:0".parse()?).await?;
    let port = free_port()?;
    let data = dir.path().join("data");
    let db_line = db.map_or(String::new(), |u| format!("database_url = {u:?}\n"));
    let config = dir.path().join("otpgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{db_line}\
             rate_limit_per_sec = 0.0\n[log]\nlevel = \"warn\"\n"
        ),
    )?;
    let node = Node(
        Command::new(env!("CARGO_BIN_EXE_otpgate"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting otpgate")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("otpgate did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let password = std::fs::read_to_string(data.join("initial-admin-password"))?;
    let auth = form(
        &http,
        &format!("{base}/auth"),
        None,
        &[("username", "admin"), ("password", password.trim())],
    )
    .await?;
    let jwt = auth["result"]["value"]["token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let url = format!("http://{gw}/sms/send");
    form(
        &http,
        &format!("{base}/smsgateway"),
        Some(&jwt),
        &[
            ("name", "benchgw"),
            (
                "module",
                "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
            ),
            ("option.URL", &url),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
        ],
    )
    .await?;
    let c = concurrency.to_string();
    form(
        &http,
        &format!("{base}/system/setConfig"),
        Some(&jwt),
        &[
            ("event.outbox_concurrency", &c),
            ("sms.number_check", "lenient"),
        ],
    )
    .await?;

    let store = Store::connect(&db.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=rwc",
                data.join("otpgate.sqlite").display()
            )
        },
        str::to_owned,
    ))
    .await?;
    let items: Vec<NewOutboxItem> = (0..n)
        .map(|i| NewOutboxItem {
            dedupe_key: format!("bench-{i}"),
            handler_id: 0,
            handler_name: "bench".into(),
            event: "bench".into(),
            channel: "sms".into(),
            config: "benchgw".into(),
            recipient: format!("+4915199{i:06}"),
            subject: String::new(),
            body: format!("Your code is {:06}", i % 1_000_000),
        })
        .collect();
    let pid = node.0.id();
    let cpu0 = otpgate_load::cpu_seconds(pid).unwrap_or(0.0);
    // The node runs on the real clock: the items are due now.
    let now_ms = otpgate_core::clock::SystemClock.now_ms();
    store.outbox_insert(&items, now_ms).await?;
    let queued = Instant::now();
    let (mut first, mut rss) = (None, 0.0_f64);
    let total = u64::try_from(n)?;
    loop {
        let got = inbox.received();
        if got > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        rss = rss.max(otpgate_load::rss_mib(pid).unwrap_or(0.0));
        if got >= total {
            break;
        }
        if queued.elapsed() > Duration::from_secs(300) {
            bail!("only {got} of {n} SMS arrived in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = Instant::now();
    let cpu = otpgate_load::cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let first = first.unwrap_or(queued);
    let drain = done.duration_since(first).as_secs_f64();
    drop(node);
    Ok(serde_json::json!({
        "database": if db.is_some() { "postgresql" } else { "sqlite" },
        "items": n,
        "outbox_concurrency": concurrency,
        "first_sms_after_queueing_s": (first.duration_since(queued).as_secs_f64() * 1000.0).round() / 1000.0,
        "drain_s": (drain * 1000.0).round() / 1000.0,
        "sms_per_s": (n as f64 / drain).round(),
        "server_cpu_ms_per_sms": (cpu * 1000.0 / n as f64 * 1000.0).round() / 1000.0,
        "server_rss_max_mib": rss.round(),
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = usize::try_from(args.first().copied().unwrap_or(10_000))?;
    let levels: Vec<u32> = match args.get(1..) {
        Some(rest) if !rest.is_empty() => rest
            .iter()
            .map(|&c| u32::try_from(c))
            .collect::<Result<_, _>>()?,
        _ => vec![4, 16],
    };
    let admin = std::env::var("OUTBOX_BENCH_DB").ok();
    for c in levels {
        let db = match &admin {
            Some(a) => Some(otpgate_store::testdb::fresh_postgres(a).await?),
            None => None,
        };
        let r = run(n, c, db.as_deref()).await?;
        println!(
            "outbox: {} SMS at concurrency {c} ({}): {} SMS/s, {} ms CPU per SMS, RSS {} MiB",
            r["items"],
            r["database"],
            r["sms_per_s"],
            r["server_cpu_ms_per_sms"],
            r["server_rss_max_mib"]
        );
        println!("{r}");
    }
    Ok(())
}
