//! A simulator of Nomad's HTTP API (v1.9–1.11 behaviour, quirks included) for
//! integration tests and demos: the event stream (`/v1/event/stream`), native
//! service discovery (`/v1/services`, `/v1/service/:name`), job and allocation
//! reads, the client's check results (`/v1/client/allocation/:id/checks`),
//! ACLs, blocking queries, plus a control API to drive the simulated
//! cluster (`Sim` in Rust, `/sim/...` over HTTP).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use nomad_sim::{PlaceAlloc, Sim, SimConfig, StopKind};
//! let sim = Sim::start(SimConfig::default()).await?;
//! sim.register_job(serde_json::json!({
//!     "ID": "web",
//!     "TaskGroups": [{"Name": "web", "Services": [
//!         {"Name": "web", "PortLabel": "http", "Provider": "nomad", "Tags": ["v1"]}]}]
//! }));
//! let alloc = sim.place_alloc(PlaceAlloc::new("web", "web").port("http", 8080));
//! sim.stop_alloc(&alloc, StopKind::PlanTerminal);
//! # Ok(()) }
//! ```

mod acl;
mod api;
mod config;
mod control;
mod events;
mod faults;
mod goduration;
mod http;
mod identity;
mod ids;
mod interpolate;
mod lifecycle;
mod model;
mod scenario;
mod sim;
mod state;
mod stream;
mod timefmt;

pub use acl::{Acl, AclToken, Capabilities, JobPolicy};
pub use config::{SimConfig, StreamMode};
pub use goduration::{parse_go_duration, parse_positive_duration};
pub use lifecycle::{DeploymentEnd, PlaceAlloc, RegisterOutcome, SimError, StopKind};
pub use model::checks::CheckOutcome;
pub use scenario::Scenario;
pub use sim::{RestartKind, Sim};
