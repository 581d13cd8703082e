//! The Nomad side: the API client, the watcher (list + event stream → typed
//! [`Change`]s), the instance [`Catalog`], and job-spec [`Checks`] with
//! their per-version cache.
//!
//! Two folders: `watch/` lists and follows Nomad's registrations (the client,
//! the event stream, the catalog) and `spec/` reads job specs and their
//! checks; what both use (`config`, `error`) sits here, and every public item
//! is re-exported from here.
//!
//! Wiring (see `docs/nomad-client.md`):
//! ```no_run
//! # async fn demo(file: haproxy_nomad_connector::nomad::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use haproxy_nomad_connector::nomad::{self, Catalog, Change};
//! let settings = file.resolve(&nomad::ProcessEnv)?;
//! let client = nomad::HttpClient::new(&settings)?;
//! let checks = nomad::Checks::new(client.clone(), &settings);
//! let watcher = nomad::Watcher::new(client, &settings).with_checks(&checks);
//! let health = watcher.health();
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
//! tokio::spawn(watcher.run(tx, std::future::pending()));
//! let mut catalog = Catalog::new();
//! while let Some(change) = rx.recv().await {
//!     catalog.apply(&change);
//!     if let Change::Upserted(i) = &change {
//!         let _lookup = checks.check_for(i).await; // off the event path in the daemon
//!     }
//! }
//! # let _ = health; Ok(()) }
//! ```

mod config;
mod error;
#[cfg(test)]
pub(crate) mod fake;
mod spec;
mod watch;

pub use config::{Address, Config, ConfigError, Env, ProcessEnv, Settings, Tls};
pub use error::{Error, Result};
pub use spec::alloc_checks::{CheckResult, CheckStatus, MAX_CHECKS_BODY};
pub use spec::checks::{CheckLookup, Checks, ChecksStats, SpecCheck};
pub use spec::job;
pub use watch::backoff::{Action, Backoff, error_policy};
pub use watch::client::{Api, ChunkStream, Indexed};
pub use watch::deployments::{CanaryBoard, CanaryState, CanaryUpdate};
pub use watch::health::{Health, HealthWatch};
pub use watch::http::{HttpClient, HttpStream};
pub use watch::instance::{Change, Instance, Scope};
pub use watch::store::Catalog;
pub use watch::watcher::Watcher;
pub use watch::wire::{
    AllocStub, AllocatedResources, NamespaceServices, PortMapping, Registration, ServiceStub,
    SharedResources,
};
