//! Several checks of one service rendered as one rule sequence, a step per check.

use super::http::http_rules;
use super::server::server_args;
use super::{
    MAX_RULES, MAX_URI, RenderContext, RenderedCheck, kw, map_path, port, positive_ms, too_many,
};
use crate::vocab::syntax::{Invalid, Token};
use hnc_core::model::{CheckPlan, HttpCheck, ServerCheck};

/// One of several checks of a service, run as one step of a rule sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    /// Its HTTP request and expectations; `None` for a connect-only step.
    pub http: Option<&'a HttpCheck>,
    /// The port it connects to (this server's).
    pub port: u16,
    /// The default `Host` it sends: `address:port`, as Go's client does.
    pub host: String,
    /// It connects with TLS.
    pub ssl: bool,
    /// The TLS SNI.
    pub sni: Option<&'a str>,
    /// The TLS ALPN.
    pub alpn: Option<&'a str>,
    /// The multiplexer of an HTTP step (`h1`, `h2`).
    pub proto: Option<&'a str>,
}

/// Fields of a step in the server's URI-map value, each step having three.
pub(super) const URI_FIELD: usize = 1;
const PORT_FIELD: usize = 2;
pub(super) const HOST_FIELD: usize = 3;
const FIELDS_PER_STEP: usize = 3;
/// Between the fields of a URI-map value: a URI Go sends never holds it
/// (it starts the fragment, which Go does not send).
const FIELD_SEPARATOR: char = '#';

/// The 1-based `field()` index of a step's field.
pub(super) fn field(step: usize, which: usize) -> usize {
    step * FIELDS_PER_STEP + which
}

/// Renders several checks as one rule sequence: the server is UP only when
/// every step passes. Each step connects on its own (to its own port, with
/// its own TLS) and, for HTTP, sends its own request. The per-server values
/// (URI, port, default Host of every step) are one URI-map entry, read with
/// `field()`, so servers of one backend keep their own paths and ports.
/// `plan` gives the server's timing and `timeout check`; its backend rules
/// are ignored.
///
/// # Errors
/// No URI map is configured, too many steps, or a value that breaks the grammar.
pub fn render_steps(
    plan: &CheckPlan,
    steps: &[Step],
    ctx: &RenderContext,
) -> Result<RenderedCheck, Invalid> {
    let Some(map) = &ctx.uri_map else {
        return Err(Invalid {
            what: "several checks".into(),
            value: steps.len().to_string(),
            reason: "need haproxy.uri_map (each server's URIs and ports)",
        });
    };
    if steps.is_empty() || steps.len() > MAX_RULES / 4 {
        return Err(too_many("checks of one service", steps.len()));
    }
    let path = map_path("URI map path", map)?;
    let mut out = RenderedCheck::default();
    let http = steps.iter().any(|s| s.http.is_some());
    let prefix = if http { "http-check" } else { "tcp-check" };
    out.backend.push(vec![
        kw("option"),
        kw(if http { "httpchk" } else { "tcp-check" }),
    ]);
    let mut fields = Vec::with_capacity(steps.len() * FIELDS_PER_STEP);
    for (index, step) in steps.iter().enumerate() {
        let mut connect = vec![kw(prefix), kw("connect")];
        if index > 0 {
            // The first step connects where the server's `port` says.
            connect.extend([
                kw("port"),
                Token::trusted_log_format(format!(
                    "srv_name,map({},0),field({},#)",
                    path.as_str(),
                    field(index, PORT_FIELD)
                )),
            ]);
        }
        if step.ssl {
            connect.push(kw("ssl"));
        }
        if let Some(sni) = step.sni {
            connect.extend([kw("sni"), Token::hostname("check sni", sni)?]);
        }
        if let Some(alpn) = step.alpn {
            connect.extend([
                kw("alpn"),
                Token::restricted("check alpn", alpn, "-._/,", 64)?,
            ]);
        }
        if let Some(proto) = step.proto {
            if !matches!(proto, "h1" | "h2") || step.http.is_none() {
                return Err(Invalid {
                    what: "check-proto".into(),
                    value: proto.chars().take(20).collect(),
                    reason: "is not h1 or h2 of an HTTP check",
                });
            }
            connect.extend([
                kw("proto"),
                Token::restricted("check-proto", proto, "", 16)?,
            ]);
        }
        out.backend.push(connect);
        let uri = match step.http {
            Some(h) => {
                http_rules(h, ctx, Some((index, &path)), &mut out.backend)?;
                Token::word("http-check uri", &h.uri, MAX_URI)?
                    .as_str()
                    .to_string()
            }
            None => String::new(),
        };
        fields.extend([
            uri,
            port("check port", step.port)?.as_str().to_string(),
            Token::word("check Host", &step.host, 64)?
                .as_str()
                .to_string(),
        ]);
    }
    if let Some(ms) = plan.timeout_check_ms {
        out.backend.push(vec![
            kw("timeout"),
            kw("check"),
            positive_ms("timeout check", ms)?,
        ]);
    }
    let tls = steps.iter().any(|s| s.ssl);
    let server = ServerCheck {
        ssl: false,
        sni: None,
        proto: None,
        alpn: None,
        ..plan.server.clone()
    };
    out.server = server_args(&server, tls, false, ctx)?.into();
    let value = fields.join(&FIELD_SEPARATOR.to_string());
    out.uri_entry = Some(Token::word_fields(
        "URI map value",
        &value,
        FIELD_SEPARATOR,
        MAX_URI * 2,
    )?);
    Ok(out)
}
