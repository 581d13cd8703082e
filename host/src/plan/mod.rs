//! The pure planner: desired HAProxy state, actual state, and the diff between them.
//!
//! No I/O here: `desired` fills [`Desired`] from Nomad's instances and the
//! mapping engine, the driver reads [`Actual`] from HAProxy, and [`diff`]
//! returns the [`ChangeSet`] the driver applies.

pub mod balance;
pub mod change;
pub mod diff;
pub mod model;

pub use change::{BackendChange, ChangeSet, Refusal, ServerAction, ServerChange};
pub use diff::diff;
pub use model::{
    Actual, ActualBackend, ActualServer, AdminState, BackendClass, BackendSpec, Balance, Desired,
    DomainMatch, Domains, MapEntries, Mode, OpState, ServerSpec,
};
