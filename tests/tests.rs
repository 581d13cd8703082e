//! The integration tests: one binary (see each module for its subject).
//!
//! Tests that start HAProxy use `hnc_tests::haproxy` (their own process,
//! ports and sockets under a temp dir) and assert what HAProxy reports.
mod builtin_checks;
mod config_reload;
mod connector_process;
mod deployments;
mod docs;
mod driver;
mod durability;
mod e2e;
mod examples;
mod exclusive;
mod faults;
mod fidelity;
mod golden;
mod grammar_haproxy;
mod heap_metrics;
mod hostile_input;
mod js_plugin;
mod nomad_client;
mod package;
mod packaged_unit;
mod plugin_bounds;
mod plugin_kit;
mod properties;
mod sandbox;
mod site_plugin;
mod status_page;
mod task_api;
mod verdicts;
