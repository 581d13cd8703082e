//! Simulator configuration; `SimConfig::default()` is a Nomad 1.11.2+ dev agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::acl::Acl;

/// How `/v1/event/stream` is put on the wire (it changed in Nomad 1.11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamMode {
    /// Before 1.11.2: `Transfer-Encoding: chunked`; errors before the first frame are
    /// status codes, and an error after it is appended to the body as plain text.
    Chunked,
    /// 1.11.2+: hijacked connection, always `200 OK`, no length, no chunking,
    /// close-delimited; any error just closes the connection.
    #[default]
    Hijacked,
}

/// Configuration of one simulated Nomad agent.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address (default `127.0.0.1:0`, an ephemeral port).
    pub listen: SocketAddr,
    /// Also serve the Task API on this Unix socket (a task's
    /// `${NOMAD_SECRETS_DIR}/api.sock`): the same endpoints, but every
    /// request needs an ACL token or a workload identity. Default none.
    pub task_api_socket: Option<PathBuf>,
    /// Event-stream heartbeat (`{}`) interval; Nomad hard-codes 30 s.
    pub heartbeat: Duration,
    /// Number of Raft batches the event buffer holds (`event_buffer_size`, default 100).
    pub buffer_size: usize,
    /// Wire format of the event stream.
    pub stream_mode: StreamMode,
    /// ACLs; `None` = ACLs disabled (Nomad's default).
    pub acl: Option<Acl>,
    /// Status for a valid token lacking the capability on the event stream:
    /// 403 (1.9.6+) or 500 (up to 1.9.5). Only used in [`StreamMode::Chunked`].
    pub acl_denied_status: u16,
    /// Whether purge events carry `"Deleted": true` in the Job payload (1.11.3+).
    pub job_deleted_flag: bool,
    /// Region reported in jobs and the task environment.
    pub region: String,
    /// Datacenter of every simulated node.
    pub datacenter: String,
    /// Per-write deadline of the hijacked event stream (40 s in Nomad).
    pub stream_write_deadline: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            task_api_socket: None,
            heartbeat: Duration::from_secs(30),
            buffer_size: 100,
            stream_mode: StreamMode::Hijacked,
            acl: None,
            acl_denied_status: 403,
            job_deleted_flag: true,
            region: "global".to_string(),
            datacenter: "dc1".to_string(),
            stream_write_deadline: Duration::from_secs(40),
        }
    }
}
