//! The HAProxy driver: sockets, the runtime driver, reloads, validation and the files it keeps.
//!
//! [`RuntimeDriver`] implements [`Driver`]: it reads what HAProxy runs
//! ([`Driver::actual`]) and applies a [`ChangeSet`](crate::plan::ChangeSet)
//! ([`Driver::apply`]): server changes over the runtime API, backend changes
//! through a validated, coalesced reload. See `docs/haproxy-driver.md`.

pub mod actual;
pub mod commands;
pub mod config;
pub mod driver;
pub mod dry_run;
pub mod error;
pub mod ledger;
pub mod managed_file;
pub mod proxy_ids;
pub mod reload;
pub mod runtime_driver;
pub mod socket;
pub mod state_files;
pub mod stats;
pub mod validate;
pub mod version;

pub use config::Config;
pub use driver::{ApplyReport, ChangeFailure, DomainFailure, Driver, HeldBack, ReloadOutcome};
pub use error::{Error, Result};
pub use runtime_driver::RuntimeDriver;
pub use version::{Capabilities, Version};
