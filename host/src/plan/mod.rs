//! The pure planner: desired HAProxy state, actual state, and the diff between them.
//!
//! No I/O here: the lead's `desired` builder fills [`Desired`] from Nomad
//! and the mapping engine, the driver reads [`Actual`] from HAProxy, and
//! [`diff`] returns the [`ChangeSet`] the driver applies.

pub mod balance;
pub mod change;
pub mod diff;
pub mod model;

pub use change::{BackendChange, ChangeSet, Refusal, ServerAction, ServerChange};
pub use diff::diff;
pub use model::{
    Actual, ActualBackend, ActualServer, AdminState, BackendClass, BackendSpec, Balance, Desired,
    MapEntries, Mode, OpState, ServerSpec,
};
