//! The disagreement monitor: Nomad's own check results beside HAProxy's
//! verdicts, compared, counted and logged; never acted on.
//!
//! HAProxy's check stays the authority on routing. The monitor exists to
//! show where the two differ in production (a firewall between HAProxy and
//! the app, a check that answers differently by source or `Host`):
//! - [`compare`]: the verdicts and the [`compare::Tracker`] that confirms a
//!   disagreement once it outlasts the check's interval + timeout;
//! - `monitor`: the task that reads HAProxy's states and Nomad's results
//!   (`GET /v1/client/allocation/:id/checks`) at a bounded rate;
//! - [`targets`](targets()): which servers are compared, and [`Publish`]:
//!   how often the loop hands the monitor a new list;
//! - [`explain`](explain()): the one-shot view `explain` prints.

pub mod compare;
mod explain;
mod monitor;
mod publish;
mod targets;

pub use crate::config::verdicts::Config;
pub use explain::explain;
pub use publish::Publish;
pub use targets::{Target, targets};

use crate::haproxy::socket::Socket;
use crate::metrics::Metrics;
use crate::nomad::Api;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the monitor (unless `config.enabled` is false): it compares the
/// servers `targets` holds until `stop` completes.
pub fn spawn<C: Api>(
    client: C,
    config: Config,
    stats_socket: &Path,
    metrics: Arc<Metrics>,
    targets: watch::Receiver<Arc<Vec<Target>>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    if !config.enabled {
        return None;
    }
    let socket = Socket::new(stats_socket, Duration::from_secs(5));
    let monitor = monitor::Monitor::new(client, config, socket, metrics, targets);
    Some(tokio::spawn(monitor.run(stop)))
}
