//! The serve loop: HTTP (and HTTPS), RADIUS, the notification worker and housekeeping, on a
//! bound listener until a shutdown signal (so tests use port 0), then a drain.

use crate::config::Config;
use crate::state::App;
use otpgate_service::Services;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// Serves the HTTP API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_all(listener, None, app, shutdown).await
}

/// Serves the HTTP API and, when a socket is given, RADIUS, until `shutdown` resolves; then
/// both drain what is in flight.
pub async fn serve_all(
    listener: TcpListener,
    radius: Option<UdpSocket>,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(e) = app.services.warn_if_policies_lock_out().await {
        tracing::warn!(error = %e, "could not check the policies at start-up");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let radius_task = match radius {
        Some(socket) => {
            let clients = radius_clients(&app.config)?;
            let handler = crate::radius_glue::RadiusHandler { app: app.clone() };
            let stats = app.radius_stats.clone();
            let stop = wait(stop_rx.clone());
            let limits = otpgate_radius::server::Limits {
                max_in_flight: app.config.radius.max_in_flight,
                handler_timeout: Duration::from_secs(app.config.server.request_timeout_secs),
            };
            Some(tokio::spawn(otpgate_radius::server::serve(
                socket, clients, handler, stats, limits, stop,
            )))
        }
        None => None,
    };
    let outbox = tokio::spawn(outbox_worker(app.services.clone(), wait(stop_rx.clone())));
    let http = serve_http(listener, app.clone(), wait(stop_rx)).await;
    if let Some(t) = radius_task {
        t.await.map_err(std::io::Error::other)??;
    }
    // A round in progress finishes (so no item is left half-sent), within a bound.
    let abort = outbox.abort_handle();
    if tokio::time::timeout(OUTBOX_DRAIN, outbox).await.is_err() {
        abort.abort();
        tracing::warn!("the notification worker did not finish in time");
    }
    // Entries of requests that timed out may still wait for the audit writer.
    app.services.flush_audit().await;
    if let Err(e) = app.services.flush_sms_stats().await {
        tracing::warn!(error = %e, "the dashboard's SMS counts could not be saved at shutdown");
    }
    app.services.close().await;
    http
}

/// The RADIUS clients of the configuration, with their secrets loaded.
pub fn radius_clients(config: &Config) -> std::io::Result<Vec<otpgate_radius::server::Client>> {
    config
        .radius
        .clients
        .iter()
        .map(|c| {
            let network = otpgate_radius::server::Network::parse(&c.address).ok_or_else(|| {
                std::io::Error::other(format!("radius client address {:?} is invalid", c.address))
            })?;
            let secret = c
                .load_secret()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(otpgate_radius::server::Client {
                network,
                secret,
                require_message_authenticator: c.require_message_authenticator,
                realm: c.realm.clone(),
            })
        })
        .collect()
}

async fn serve_http(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::http::router(app.clone());
    let housekeeping = tokio::spawn(housekeeping(app.services.clone()));
    let key_watch = tokio::spawn(watch_keys(app.services.clone()));
    let limit_share = tokio::spawn(share_limits_every(app.clone()));
    let stats = tokio::spawn(flush_stats(app.services.clone()));
    let receipts = {
        let services = app.services.clone();
        tokio::spawn(async move { services.take_gateway_receipts().await })
    };
    let server = &app.config.server;
    let header_timeout = Duration::from_secs(server.header_read_timeout_secs);
    let result = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => {
            let config = crate::tls::server_config(cert, key).map_err(std::io::Error::other)?;
            let listener = crate::tls::TlsListener::new(listener, config)?;
            serve_connections(listener, router, header_timeout, shutdown).await
        }
        _ => serve_connections(listener, router, header_timeout, shutdown).await,
    };
    housekeeping.abort();
    key_watch.abort();
    limit_share.abort();
    stats.abort();
    receipts.abort();
    result
}

/// Every 10 seconds: this node's SMS counts into the shared `sms_stat` (the dashboard).
async fn flush_stats(services: Services) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        if let Err(e) = services.flush_sms_stats().await {
            tracing::warn!(error = %e, "the dashboard's SMS counts could not be saved");
        }
    }
}

/// Serves HTTP/1.1 connections from `listener` until `shutdown` resolves, then lets the requests
/// in flight finish. Each connection must send a request's headers within `header_timeout`
/// (slow clients are closed, so they cannot hold connections open), and its handler sees the
/// peer address as axum's `ConnectInfo<SocketAddr>`.
async fn serve_connections<L>(
    mut listener: L,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use tower::ServiceExt;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(crate::strict::StrictLines::new(io)),
                hyper_util::service::TowerToHyperService::new(service),
            );
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// How long a stopping server waits for the notification round in progress.
const OUTBOX_DRAIN: Duration = Duration::from_secs(30);

/// How often the worker looks for due notifications without being woken (retries, and
/// items other nodes queued).
const OUTBOX_POLL: Duration = Duration::from_secs(1);

/// Delivers queued notifications until `stop` resolves: woken when this node queues some,
/// otherwise every [`OUTBOX_POLL`]. A round is never interrupted by the stop.
async fn outbox_worker(services: Services, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        let busy = match services.deliver_outbox().await {
            Ok(r) => {
                if r != otpgate_service::outbox::Round::default() {
                    tracing::debug!(
                        sent = r.sent,
                        retried = r.retried,
                        dead = r.dead,
                        "notification round"
                    );
                }
                r.sent + r.retried + r.dead > 0
            }
            Err(e) => {
                tracing::warn!(error = %e, "notification round failed");
                false
            }
        };
        if busy {
            // More may be due at once: go on, but let a stop through first.
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = tokio::task::yield_now() => continue,
            }
        }
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = services.outbox().woken() => {}
            () = tokio::time::sleep(OUTBOX_POLL) => {}
        }
    }
}

/// Every minute: delete expired challenges and old delivered or dead notifications so the
/// tables stay small.
async fn housekeeping(services: Services) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match services.purge_expired_challenges().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired challenges purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired challenges failed"),
        }
        match services.purge_send_windows().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "old send-limit counters purged"),
            Err(e) => tracing::warn!(error = %e, "purging send-limit counters failed"),
        }
        match services.purge_web_logouts().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired web sign-outs purged"),
            Err(e) => tracing::warn!(error = %e, "purging web sign-outs failed"),
        }
        match services.reap_interrupted_outbox().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                items = n,
                "notifications interrupted while sending were dead-lettered"
            ),
            Err(e) => tracing::warn!(error = %e, "reaping interrupted notifications failed"),
        }
        if let Err(e) = services.prune_gateway_providers().await {
            tracing::warn!(error = %e, "ending the providers of changed gateways failed");
        }
        match services.purge_messages().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "old SMS records purged"),
            Err(e) => tracing::warn!(error = %e, "purging old SMS records failed"),
        }
        match services.purge_outbox().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "old notifications purged"),
            Err(e) => tracing::warn!(error = %e, "purging old notifications failed"),
        }
    }
}

/// Says this node is alive and shares the per-address rate limits among the live nodes of
/// the cluster (each allows its share of the configured rate).
pub async fn share_limits(app: &App) {
    match app.services.heartbeat().await {
        Ok(nodes) => {
            app.rate_limiter.share_among(nodes);
            app.auth_failures.share_among(nodes);
        }
        Err(e) => tracing::debug!(error = %e, "heartbeat failed; rate limit shares unchanged"),
    }
}

/// [`share_limits`] every heartbeat.
async fn share_limits_every(app: App) {
    let every = u64::try_from(otpgate_service::stats::HEARTBEAT_EVERY_MS).unwrap_or(5000);
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    loop {
        tick.tick().await;
        share_limits(&app).await;
    }
}

/// Every ten seconds: the key file again, if it changed (a rotation while the node runs; new
/// secrets are then sealed with the new active key).
async fn watch_keys(services: Services) {
    let mut tick = tokio::time::interval(otpgate_service::keys::WATCH_EVERY);
    loop {
        tick.tick().await;
        services.reload_keys_if_changed();
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}
