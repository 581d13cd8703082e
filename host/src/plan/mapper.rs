//! What the planner asks of check mapping: the [`CheckMapper`] trait and the
//! [`Mapped`] check it returns.
//!
//! The planner defines them and the mapping engine implements them, so the
//! planner needs neither wasmtime nor a plugin: its tests use a stub.

use crate::vocab::check::RenderedCheck;
use hnc_core::model::{CheckPlan, NomadCheck, ServiceContext};
use std::sync::Arc;

/// Maps one instance's check; the engine in production, anything in tests.
pub trait CheckMapper {
    /// Maps `check` (from the job spec, if any) for `service`.
    fn map(&self, service: &ServiceContext, check: Option<&NomadCheck>) -> Arc<Mapped>;

    /// Maps every check of `service` (Nomad requires each to pass), the
    /// first being the one tags apply to. By default only the first.
    fn map_checks(&self, service: &ServiceContext, checks: &[NomadCheck]) -> Arc<Mapped> {
        self.map(service, checks.first())
    }
}

/// Where the check that was mapped came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOrigin {
    /// The job specification.
    JobSpec,
    /// `haproxy.check.type` declared it.
    Tags,
    /// Neither: the ADR's plain TCP check.
    None,
}

/// The TCP fallback taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// `no-check`, `unsupported-type`, `invalid-value`, or the cause of a
    /// plugin's failure (`timeout`, `memory`, `trap`, `rejected`, …).
    pub cause: &'static str,
    /// The explanation logged.
    pub reason: String,
}

/// The outcome of mapping one service's check.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The final typed check (after tags and any fallback).
    pub plan: CheckPlan,
    /// The same as validated HAProxy syntax.
    pub rendered: RenderedCheck,
    /// The plugin that was asked (`name@version`), if any.
    pub plugin: Option<String>,
    /// Where the check came from.
    pub origin: CheckOrigin,
    /// Set when the result is a TCP fallback.
    pub fallback: Option<Fallback>,
    /// The `haproxy.check.*` tags applied.
    pub tags: Vec<String>,
    /// Notes and warnings for `map` and `explain`.
    pub notes: Vec<String>,
}
