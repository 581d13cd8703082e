//! The pure planner: desired HAProxy state, actual state, and the diff between them.
//!
//! No I/O here: `desired` fills [`Desired`] from Nomad's instances and a
//! [`CheckMapper`] (the mapping engine implements it), the driver reads
//! [`Actual`] from HAProxy, and [`diff`] returns the [`ChangeSet`] the
//! driver applies.

pub mod assembler;
pub mod balance;
pub mod canary;
pub mod change;
pub mod desired;
pub mod diff;
pub mod mapper;
pub mod model;
pub mod requeue;
pub mod tags;

pub use assembler::{Assembler, Update};
pub use change::{
    BackendChange, ChangeSet, DomainAction, DomainChange, Refusal, ServerAction, ServerChange,
};
pub use desired::{
    Assembled, InstanceInput, Reports, ServiceKey, ServicePlan, assemble, plan_service,
};
pub use diff::{diff, diff_within};
pub use mapper::{CheckMapper, CheckOrigin, Fallback, Mapped};
pub use model::{
    Actual, ActualBackend, ActualServer, AdminState, BackendClass, BackendSpec, Balance, Desired,
    DomainMap, DomainMatch, Domains, MapEntries, Mode, OpState, ServerSpec,
};
pub use requeue::{Earliest, Requeue};
