//! The state every request shares: the services, the configuration in effect, the metrics and
//! the per-address rate limiter.

use crate::config::Config;
use crate::metrics::Metrics;
use otpgate_service::Services;
use std::sync::Arc;

/// Shared state of all requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    /// The use cases.
    pub services: Services,
    /// The configuration in effect.
    pub config: Arc<Config>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Counters of the RADIUS server.
    pub radius_stats: Arc<otpgate_radius::server::Stats>,
    /// Per-address limits of the anonymous endpoints.
    pub rate_limiter: Arc<crate::ratelimit::RateLimiter>,
    /// Per-address limits of failed admin authentications (401) at the admin API, at the same
    /// rate: an address that used them up gets 429 there before any work.
    pub auth_failures: Arc<crate::ratelimit::RateLimiter>,
}

impl App {
    /// Wraps services and configuration.
    pub fn new(services: Services, config: Config) -> Self {
        Self {
            services,
            metrics: Arc::new(Metrics::default()),
            radius_stats: Arc::new(otpgate_radius::server::Stats::default()),
            rate_limiter: Arc::new(crate::ratelimit::RateLimiter::new(
                config.server.rate_limit_per_sec,
                config.server.rate_limit_burst,
            )),
            auth_failures: Arc::new(crate::ratelimit::RateLimiter::new(
                config.server.rate_limit_per_sec,
                config.server.rate_limit_burst,
            )),
            config: Arc::new(config),
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
