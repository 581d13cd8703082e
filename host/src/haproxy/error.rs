//! Errors of the HAProxy driver.

use super::validate::ConfigAlert;
use std::path::PathBuf;
use std::time::Duration;

/// A failure of the HAProxy driver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket could not be reached, or the exchange broke.
    #[error("haproxy socket {path}: {source}")]
    SocketFailed {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A socket exchange took longer than its limit.
    #[error("haproxy socket {path}: no complete answer within {after:?}")]
    SocketTimedOut {
        /// The socket.
        path: PathBuf,
        /// The limit.
        after: Duration,
    },
    /// HAProxy answered something the driver cannot read.
    #[error("haproxy: unexpected answer to {what}: {reply:?}")]
    BadReply {
        /// The command.
        what: &'static str,
        /// The answer, shortened.
        reply: String,
    },
    /// An HAProxy version the driver does not support.
    #[error("haproxy {version}: unsupported, the connector needs HAProxy 2.6 or later")]
    UnsupportedVersion {
        /// The version HAProxy reported.
        version: String,
    },
    /// A configured path that cannot be written into HAProxy's config.
    #[error("haproxy: the path {path} holds characters HAProxy's config cannot take")]
    UnsafePath {
        /// The path.
        path: PathBuf,
    },
    /// Two of the driver's maps configured at one path: each would undo
    /// the other's entries.
    #[error("haproxy: {path} is configured for two maps; give each map its own file")]
    MapPathShared {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    ReadFailed {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    WriteFailed {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The managed file holds something the connector never writes.
    #[error("{path}:{line}: not a line the connector writes: {text:?}")]
    ManagedFileCorrupt {
        /// The managed file.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// `haproxy -c` could not be run.
    #[error("running {bin} -c: {source}")]
    ValidatorFailed {
        /// The binary.
        bin: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `haproxy -c` took longer than the reload time limit.
    #[error("{bin} -c: no answer within {after:?}")]
    ValidatorTimedOut {
        /// The binary.
        bin: PathBuf,
        /// The limit.
        after: Duration,
    },
    /// The render does not pass `haproxy -c`: the old config keeps serving.
    #[error("the new managed config fails haproxy -c (kept at {kept_at}); HAProxy keeps the old config: {}", summary(.alerts))]
    ValidationFailed {
        /// HAProxy's alerts, with file and line where it gave them.
        alerts: Vec<ConfigAlert>,
        /// Where the rejected render is kept for inspection.
        kept_at: PathBuf,
    },
    /// The reload did not produce a new worker: the old one keeps serving.
    #[error("haproxy reload failed: {reason}")]
    ReloadFailed {
        /// What was seen.
        reason: String,
    },
    /// HAProxy reloaded but runs none of the managed backends listed.
    #[error(
        "haproxy does not load {path}: after a reload it still lacks {missing:?}; start it with `-f <operator config> -f {path}`"
    )]
    ManagedFileNotLoaded {
        /// The managed file.
        path: PathBuf,
        /// The backends HAProxy lacks.
        missing: Vec<String>,
    },
}

fn summary(alerts: &[ConfigAlert]) -> String {
    let shown: Vec<String> = alerts.iter().take(3).map(ToString::to_string).collect();
    let mut text = shown.join("; ");
    if alerts.len() > 3 {
        text.push_str(&format!("; and {} more", alerts.len() - 3));
    }
    text
}

/// Result alias of the driver.
pub type Result<T, E = Error> = std::result::Result<T, E>;
