//! haproxy-nomad-connector: keeps HAProxy's backends and health checks equal
//! to Nomad's service registrations and the checks of their job specs.
//!
//! The data path, one module per stage (see docs/architecture.md):
//! `nomad` → `plan` → `mapping` → `plan` → `haproxy`. No module depends on
//! a later stage: `plan` defines the `CheckMapper` that `mapping`
//! implements, and what several stages share of HAProxy's syntax lives in
//! `vocab`, which depends on nothing. A test (`layering`) keeps the graph
//! of the top-level modules free of cycles.

#![deny(missing_docs)]

pub mod config;
pub mod daemon;
pub mod durable;
pub mod escape;
pub mod haproxy;
pub mod heap;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod nomad;
pub mod plan;
pub mod regular_file;
pub mod report;
pub mod vocab;

#[cfg(test)]
mod layering;
