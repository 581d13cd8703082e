//! Plugin errors: at load time ([`LoadError`]) and per call ([`CallError`]).

use std::path::PathBuf;

/// A plugin that cannot be used: the daemon refuses to start (or to reload) with it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The `.wasm` file could not be read.
    #[error("plugin {path}: {source}")]
    ReadFailed {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a valid component (a core module, or corrupt).
    #[error("plugin {plugin}: not a valid wasm component: {message}")]
    CompileFailed {
        /// Where the plugin came from.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component imports something a plugin may not have (WASI above all).
    #[error(
        "plugin {plugin}: refused, it imports `{import}`; a plugin may import only `log` and the mapping types (no WASI, filesystem, network or clock)"
    )]
    ForbiddenImport {
        /// Where the plugin came from.
        plugin: String,
        /// The first forbidden import.
        import: String,
    },
    /// Built against another major version of the WIT package.
    #[error(
        "plugin {plugin}: built against `{import}`, but this connector speaks haproxy-nomad:mapping@0.1.x"
    )]
    IncompatibleVersion {
        /// Where the plugin came from.
        plugin: String,
        /// The versioned import.
        import: String,
    },
    /// The component does not implement the `mapper` world.
    #[error("plugin {plugin}: does not implement the mapper world: {message}")]
    LinkFailed {
        /// Where the plugin came from.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// `info()` failed or returned nonsense.
    #[error("plugin {plugin}: info() failed: {cause}")]
    InfoFailed {
        /// Where the plugin came from.
        plugin: String,
        /// Why.
        cause: String,
    },
}

/// Why one mapping call failed; the check falls back to TCP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Ran out of fuel or past its deadline: an endless loop, far too much
    /// work, or too much host work (logs) for it.
    #[error("timed out ({0})")]
    Timeout(String),
    /// Hit the memory cap.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// Trapped for another reason (a panic, unreachable, stack overflow).
    #[error("trapped: {0}")]
    Trapped(String),
    /// The plugin refused the check (its `result` error).
    #[error("refused the check: {0}")]
    Rejected(String),
    /// The answer broke the output cap.
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The host failed to run the plugin.
    #[error("host error: {0}")]
    Host(String),
}

impl CallError {
    /// A short label of the cause, for metrics and de-duplicated logs.
    pub fn cause(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::ResourceExhausted(_) => "memory",
            CallError::Trapped(_) => "trap",
            CallError::Rejected(_) => "rejected",
            CallError::InvalidOutput(_) => "invalid-output",
            CallError::Host(_) => "host",
        }
    }
}
