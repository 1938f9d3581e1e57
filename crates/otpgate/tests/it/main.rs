//! otpgate's integration tests: one test binary. The server under test is the real router on
//! a real socket (port 0) or the real binary; SMS gateways are real local servers.

// Test code asserts with unwrap, panics on failure and indexes JSON freely.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::type_complexity
)]

mod support;

mod admin;
mod browser;
mod calls;
mod cli;
mod clients;
mod cluster;
mod delivery;
mod events;
mod faults;
mod gateways;
mod hostile;
mod import;
mod ldap;
mod limits;
mod load;
mod peer;
mod policies;
mod radius;
mod receipts;
mod tokens;
mod validate;
mod web;
