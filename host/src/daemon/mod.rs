//! The daemon: the wiring of the data path, the reconcile loop, its control,
//! and the admin listener.
//!
//! [`run`] builds the parts (engine, Nomad watcher and check resolver,
//! HAProxy driver), then loops: Nomad changes mark services dirty, dirty
//! services are re-planned and synced; a periodic resync re-plans
//! everything; [`Control::Reload`] swaps in a new config's plugins;
//! [`Control::Shutdown`] stops after the batch in flight.

pub mod admin;
mod canaries;
mod config_reload;
mod interner;
pub mod lock;
mod mapped_cache;
mod prefetch;
pub mod reconcile;
mod refused;
mod run;
mod trim;
pub mod verdicts;

pub use lock::Lock;
pub use reconcile::{PassSummary, Reconciler};
pub use run::{Control, Error, run, snapshot};
