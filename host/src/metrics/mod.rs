//! Prometheus metrics for operators: one [`Metrics`] registry, rendered by
//! the admin listener's `/metrics` (see `docs/observability.md`).
//!
//! Two kinds of sources feed it:
//! - counters the daemon loop updates as things happen
//!   ([`Metrics::apply_finished`], [`Metrics::reloaded`],
//!   [`Metrics::servers_managed`]), and the verdict monitor's
//!   ([`Metrics::disagreement`], [`Metrics::verdict_read`]);
//! - counters other components already keep (the mapping engine, the HAProxy
//!   driver, the Nomad watcher, the job-spec resolver), read through
//!   [`Sources`] at scrape time, so nothing is counted twice.
//!
//! Every name starts with `hnc_`; units are part of the name.

mod registry;
mod snapshots;

pub use registry::{ApplyOutcome, Error, Format, Metrics, ReloadReason};
pub use snapshots::{Source, Sources};
