//! The integration tests: one binary (see each module for its subject).
//!
//! Tests that start HAProxy use `hnc_tests::haproxy` (their own process,
//! ports and sockets under a temp dir) and assert what HAProxy reports.
mod builtin_checks;
mod docs;
mod driver;
mod e2e;
mod examples;
mod faults;
mod fidelity;
mod golden;
mod nomad_client;
mod properties;
mod sandbox;
mod site_plugin;
