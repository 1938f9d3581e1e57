//! The `otpgate` binary's library: configuration, data-directory bootstrap, wiring and the
//! HTTP API (privacyIDEA-compatible) and the web interface. `main.rs` is only the CLI; integration tests start the
//! same [`state::App`] through [`serve::serve_all`] on a port-0 socket.

pub mod backup;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod http;
pub mod import;
pub mod metrics;
pub mod params;
pub mod radius_glue;
pub mod ratelimit;
pub mod request;
pub mod serve;
pub mod state;
pub mod strict;
pub mod tls;
pub mod web;
