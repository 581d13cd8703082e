//! Renders a typed [`CheckPlan`] into HAProxy backend lines and server arguments.
//!
//! Pure: every value goes through [`syntax`](super::syntax), so an invalid
//! value is an [`Invalid`] error (the caller falls back to TCP), never text
//! that HAProxy would read as another directive or command.

use super::syntax::{Invalid, Token, join};
use hnc_core::model::{BackendCheck, CheckPlan};
use http::http_lines;
use server::server_args;
use std::path::PathBuf;
use std::sync::Arc;
use tcp_check::tcp_check_lines;

mod http;
mod server;
mod steps;
mod tcp_check;

pub use steps::{Step, render_steps};

/// Bounds on what a plan may hold.
const MAX_HEADERS: usize = 32;
const MAX_RULES: usize = 32;
const MAX_TEXT: usize = 1024;
const MAX_URI: usize = 2048;
const MAX_BODY: usize = 8192;
const MAX_BINARY: usize = 16 * 1024;
const HTTP_TOKEN_CHARS: &str = "!$&*+-.^_`|~";

/// Site settings the rendering needs.
#[derive(Debug, Clone)]
pub struct RenderContext {
    /// The map file (server name → `address:port`) behind Nomad's default
    /// `Host` header; `None` sends no Host when the job sets none.
    pub host_map: Option<PathBuf>,
    /// The map file (server name → request URI) that gives every server of
    /// a backend its own HTTP check URI, so that during a rolling deploy old
    /// and new allocations keep the paths of their own job versions, and a
    /// changed path needs no reload. `None` writes the URI into the backend.
    pub uri_map: Option<PathBuf>,
    /// The `ca-file` for checks that verify certificates.
    pub ca_file: String,
}

impl Default for RenderContext {
    fn default() -> Self {
        RenderContext {
            host_map: None,
            uri_map: None,
            ca_file: "@system-ca".into(),
        }
    }
}

/// A check as HAProxy syntax: backend lines and server arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderedCheck {
    /// Lines of the backend section (without indentation).
    pub backend: Vec<Vec<Token>>,
    /// Arguments of the server line and of `add server` (shared with every
    /// server planned from this result).
    pub server: Arc<[Token]>,
    /// The server needs its `address:port` entry in the host map.
    pub needs_host_entry: bool,
    /// The server's entry in the URI map: its own check URI.
    pub uri_entry: Option<Token>,
}

impl RenderedCheck {
    /// The backend lines as text.
    pub fn backend_lines(&self) -> Vec<String> {
        self.backend.iter().map(|line| join(line)).collect()
    }

    /// The server arguments as text.
    pub fn server_args(&self) -> String {
        join(&self.server)
    }
}

/// Renders a plan.
///
/// # Errors
/// The first value that breaks the grammar, naming its field.
pub fn render(plan: &CheckPlan, ctx: &RenderContext) -> Result<RenderedCheck, Invalid> {
    let mut out = RenderedCheck::default();
    if !plan.server.enabled {
        return Ok(out);
    }
    let mut tls_rule = false;
    match &plan.backend {
        BackendCheck::Tcp => {}
        BackendCheck::Http(http) => {
            let uses = http_lines(http, ctx, &mut out.backend)?;
            out.needs_host_entry = uses.host_map;
            out.uri_entry = uses.uri_entry;
        }
        BackendCheck::TcpCheck(rules) => {
            tls_rule = tcp_check_lines(rules, &mut out.backend)?;
        }
    }
    if let Some(ms) = plan.timeout_check_ms {
        out.backend.push(vec![
            kw("timeout"),
            kw("check"),
            positive_ms("timeout check", ms)?,
        ]);
    }
    let http = matches!(plan.backend, BackendCheck::Http(_));
    out.server = server_args(&plan.server, tls_rule, http, ctx)?.into();
    Ok(out)
}

fn kw(word: &'static str) -> Token {
    Token::keyword(word)
}

fn positive_ms(what: &str, ms: u32) -> Result<Token, Invalid> {
    if ms == 0 {
        return Err(Invalid {
            what: what.into(),
            value: "0".into(),
            reason: "must be positive",
        });
    }
    if ms > super::timers::MAX_TIMER_MS {
        return Err(Invalid {
            what: what.into(),
            value: format!("{ms}ms"),
            reason: "is over HAProxy's largest timer (2147483647ms)",
        });
    }
    Ok(Token::millis(ms))
}

/// HAProxy reads counts into a C `int`: a larger one is refused.
const MAX_COUNT: u32 = i32::MAX as u32;

fn positive(what: &str, n: u32) -> Result<Token, Invalid> {
    if n == 0 {
        return Err(Invalid {
            what: what.into(),
            value: "0".into(),
            reason: "must be positive",
        });
    }
    count(what, n)
}

fn count(what: &str, n: u32) -> Result<Token, Invalid> {
    if n > MAX_COUNT {
        return Err(Invalid {
            what: what.into(),
            value: n.to_string(),
            reason: "is over HAProxy's largest count (2147483647)",
        });
    }
    Ok(Token::number(n))
}

fn port(what: &str, port: u16) -> Result<Token, Invalid> {
    positive(what, u32::from(port))
}

fn too_many(what: &str, count: usize) -> Invalid {
    Invalid {
        what: what.into(),
        value: count.to_string(),
        reason: "is over the limit",
    }
}

/// A map path, as our own log-format expressions embed it.
fn map_path(what: &str, path: &std::path::Path) -> Result<Token, Invalid> {
    Token::restricted(what, &path.to_string_lossy(), "/._-+@", 512)
}
