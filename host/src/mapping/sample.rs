//! The sample check a plugin is tried with: at start-up, so that settings it
//! refuses stop the start, and by `plugin check`.

use hnc_core::model::{NomadCheck, ServiceContext};

/// The sample service instance.
pub fn service() -> ServiceContext {
    ServiceContext {
        name: "trial".into(),
        namespace: "default".into(),
        provider: "nomad".into(),
        address: "127.0.0.1".into(),
        port: 8080,
        ..ServiceContext::default()
    }
}

/// A sample check of `check_type`, with what any type may read.
pub fn check(check_type: &str) -> NomadCheck {
    NomadCheck {
        name: "trial".into(),
        check_type: check_type.into(),
        path: "/health".into(),
        interval_ms: 10_000,
        timeout_ms: 2_000,
        ..NomadCheck::default()
    }
}
