//! The plugin host: maps Nomad checks to HAProxy checks with wasm components.
//!
//! [`Engine`] routes each check type to a plugin ([`Plugin`]: a component
//! compiled once, instantiated from an `InstancePre`, called within
//! [`Limits`]), applies `haproxy.check.*` tags, validates the answer by
//! rendering it, and falls back to TCP on any failure.

mod bindings;
pub mod builtin;
pub mod config;
mod engine;
pub mod error;
mod failures;
mod host;
mod imports;
pub mod limits;
pub mod load;
mod plugin;
pub mod sample;
pub mod stats;
pub mod tags;
pub mod wasm;

/// What the engine returns: the planner defines it, the engine fills it.
pub use crate::plan::{CheckOrigin, Fallback, Mapped};
pub use config::Config;
pub use engine::{Engine, Error};
pub use error::{CallError, LoadError};
pub use failures::FAILURE_TTL;
pub use limits::{Limits, LimitsOverride};
pub use load::load_bytes;
pub use plugin::Plugin;
