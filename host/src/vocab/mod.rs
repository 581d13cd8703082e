//! HAProxy's vocabulary: names, syntax, check rendering, domain patterns.
//!
//! Pure, and a leaf of the crate: it imports nothing else from it, so the
//! planner, the mapping engine and the driver all speak it without
//! depending on one another.

pub mod check;
pub mod domains;
pub mod names;
pub mod syntax;
pub mod timers;

pub use domains::DomainMatch;
