//! The running application: services, configuration and metrics, the HTTP router, and the
//! serve loop that takes a bound listener and a shutdown signal (so tests use port 0).

use crate::config::Config;
use crate::metrics::Metrics;
use otpgate_service::Services;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Shared state of all requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    /// The use cases.
    pub services: Services,
    /// The configuration in effect.
    pub config: Arc<Config>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl App {
    /// Wraps services and configuration.
    pub fn new(services: Services, config: Config) -> Self {
        Self {
            services,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Logs a warning for every `sink` gateway (messages go to a file, not to phones).
    pub async fn warn_about_sinks(&self) {
        match self.services.sink_gateways().await {
            Ok(names) => {
                for n in names {
                    tracing::warn!(gateway = %n, "SMS gateway uses the sink provider: messages are written to a file, not sent");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list gateways"),
        }
    }
}

/// Serves the HTTP API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::http::router(app.clone());
    let housekeeping = tokio::spawn(housekeeping(app.services.clone()));
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    housekeeping.abort();
    app.services.store().close().await;
    result
}

/// Every minute: delete expired challenges so the table stays small.
async fn housekeeping(services: Services) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match services.purge_expired_challenges().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired challenges purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired challenges failed"),
        }
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
