//! Renders a typed [`CheckPlan`] into HAProxy backend lines and server arguments.
//!
//! Pure: every value goes through [`syntax`](super::syntax), so an invalid
//! value is an [`Invalid`] error (the caller falls back to TCP), never text
//! that HAProxy would read as another directive or command.

use super::syntax::{Invalid, Token, join};
use hnc_core::model::{
    BackendCheck, CheckPlan, HttpCheck, HttpMatch, ServerCheck, TcpCheckRule, TcpMatch, TlsVerify,
};
use std::path::PathBuf;
use std::sync::Arc;

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

/// What an HTTP check asks of the per-server maps.
struct MapUse {
    host_map: bool,
    uri_entry: Option<Token>,
}

/// A map path, as our own log-format expressions embed it.
fn map_path(what: &str, path: &std::path::Path) -> Result<Token, Invalid> {
    Token::restricted(what, &path.to_string_lossy(), "/._-+@", 512)
}

/// `option httpchk` and its rules.
fn http_lines(
    http: &HttpCheck,
    ctx: &RenderContext,
    lines: &mut Vec<Vec<Token>>,
) -> Result<MapUse, Invalid> {
    lines.push(vec![kw("option"), kw("httpchk")]);
    http_rules(http, ctx, None, lines)
}

/// The `http-check send` and `expect` lines of one HTTP check. With `step`
/// (its index among several checks, and the URI map), the URI and the
/// default Host come from that step's fields of the server's URI-map value.
fn http_rules(
    http: &HttpCheck,
    ctx: &RenderContext,
    step: Option<(usize, &Token)>,
    lines: &mut Vec<Vec<Token>>,
) -> Result<MapUse, Invalid> {
    if http.headers.len() > MAX_HEADERS {
        return Err(too_many("http-check headers", http.headers.len()));
    }
    let mut send = vec![
        kw("http-check"),
        kw("send"),
        kw("meth"),
        Token::restricted("http-check method", &http.method, HTTP_TOKEN_CHARS, 32)?,
    ];
    let uri = Token::word("http-check uri", &http.uri, MAX_URI)?;
    let mut uri_entry = None;
    match (&ctx.uri_map, step) {
        (_, Some((index, path))) => {
            send.push(kw("uri-lf"));
            send.push(Token::trusted_log_format(format!(
                "%[srv_name,map({},/),field({},#)]",
                path.as_str(),
                field(index, URI_FIELD)
            )));
        }
        (Some(map), None) => {
            let path = map_path("URI map path", map)?;
            send.push(kw("uri-lf"));
            send.push(Token::trusted_log_format(format!(
                "%[srv_name,map({path},/)]"
            )));
            uri_entry = Some(uri);
        }
        (None, None) => send.extend([kw("uri"), uri]),
    }
    send.extend([
        kw("ver"),
        Token::restricted("http-check version", &http.version, "/.", 16)?,
    ]);
    for (name, value) in &http.headers {
        send.push(kw("hdr"));
        send.push(Token::restricted(
            "http-check header name",
            name,
            HTTP_TOKEN_CHARS,
            64,
        )?);
        let what = format!("http-check header {name}");
        // Backend lines only go to the config file, never to the CLI.
        send.push(Token::config_literal_log_format(&what, value, MAX_TEXT)?);
    }
    let has_host = http
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"));
    let mut host_map = false;
    if http.default_host
        && !has_host
        && let Some((index, path)) = step
    {
        send.push(kw("hdr"));
        send.push(kw("Host"));
        send.push(Token::trusted_log_format(format!(
            "%[srv_name,map({}),field({},#)]",
            path.as_str(),
            field(index, HOST_FIELD)
        )));
    } else if http.default_host
        && !has_host
        && let Some(map) = &ctx.host_map
    {
        let path = map_path("host map path", map)?;
        send.push(kw("hdr"));
        send.push(kw("Host"));
        send.push(Token::trusted_log_format(format!(
            "%[srv_name,map({path})]"
        )));
        host_map = true;
    }
    if !http.body.is_empty() {
        send.push(kw("body"));
        send.push(Token::quoted("http-check body", &http.body, MAX_BODY)?);
    }
    lines.push(send);
    if http.expect.len() > MAX_RULES {
        return Err(too_many("http-check expect rules", http.expect.len()));
    }
    for expect in &http.expect {
        let mut line = vec![kw("http-check"), kw("expect")];
        if expect.negate {
            line.push(kw("!"));
        }
        let pattern = match expect.matcher {
            HttpMatch::Status => {
                line.push(kw("status"));
                Token::status_codes("http-check expect status", &expect.pattern)?
            }
            HttpMatch::Rstatus => {
                line.push(kw("rstatus"));
                Token::regex("http-check expect rstatus", &expect.pattern, MAX_TEXT)?
            }
            HttpMatch::String => {
                line.push(kw("string"));
                Token::quoted("http-check expect string", &expect.pattern, MAX_TEXT)?
            }
            HttpMatch::Rstring => {
                line.push(kw("rstring"));
                Token::regex("http-check expect rstring", &expect.pattern, MAX_TEXT)?
            }
        };
        line.push(pattern);
        lines.push(line);
    }
    Ok(MapUse {
        host_map,
        uri_entry,
    })
}

/// `option tcp-check` and its rules; returns whether a rule connects with TLS.
fn tcp_check_lines(rules: &[TcpCheckRule], lines: &mut Vec<Vec<Token>>) -> Result<bool, Invalid> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(too_many("tcp-check rules", rules.len()));
    }
    // HAProxy: with a `connect` anywhere, the first rule (comments aside)
    // must be a `connect`.
    let first = rules
        .iter()
        .find(|r| !matches!(r, TcpCheckRule::Comment(_)));
    if rules.iter().any(|r| matches!(r, TcpCheckRule::Connect(_)))
        && !matches!(first, Some(TcpCheckRule::Connect(_)))
    {
        return Err(Invalid {
            what: "tcp-check rules".into(),
            value: "connect".into(),
            reason: "must come first when there is one (comments aside)",
        });
    }
    lines.push(vec![kw("option"), kw("tcp-check")]);
    let mut tls = false;
    for rule in rules {
        let mut line = vec![kw("tcp-check")];
        match rule {
            TcpCheckRule::Connect(c) => {
                line.push(kw("connect"));
                if let Some(p) = c.port {
                    line.extend([kw("port"), port("tcp-check connect port", p)?]);
                }
                if c.ssl {
                    tls = true;
                    line.push(kw("ssl"));
                }
                if let Some(sni) = &c.sni {
                    line.extend([kw("sni"), Token::hostname("tcp-check connect sni", sni)?]);
                }
                if let Some(alpn) = &c.alpn {
                    line.extend([
                        kw("alpn"),
                        Token::restricted("tcp-check connect alpn", alpn, "-._/,", 64)?,
                    ]);
                }
            }
            TcpCheckRule::Send(text) => {
                line.extend([kw("send"), Token::quoted("tcp-check send", text, MAX_TEXT)?]);
            }
            TcpCheckRule::SendBinary(bytes) => {
                line.extend([
                    kw("send-binary"),
                    Token::hex("tcp-check send-binary", bytes, MAX_BINARY)?,
                ]);
            }
            TcpCheckRule::Comment(text) => {
                line.extend([
                    kw("comment"),
                    Token::quoted("tcp-check comment", text, 256)?,
                ]);
            }
            TcpCheckRule::Expect(e) => {
                line.push(kw("expect"));
                if let Some(n) = e.min_recv {
                    line.extend([kw("min-recv"), count("tcp-check expect min-recv", n)?]);
                }
                if let Some(status) = &e.error_status {
                    if !matches!(
                        status.as_str(),
                        "L7OKC" | "L7RSP" | "L7STS" | "L6RSP" | "L4CON"
                    ) {
                        return Err(Invalid {
                            what: "tcp-check expect error-status".into(),
                            value: status.chars().take(20).collect(),
                            reason: "is not one of L7OKC, L7RSP, L7STS, L6RSP, L4CON",
                        });
                    }
                    line.extend([
                        kw("error-status"),
                        Token::restricted("error-status", status, "", 8)?,
                    ]);
                }
                if let Some(comment) = &e.comment {
                    line.extend([
                        kw("comment"),
                        Token::quoted("tcp-check expect comment", comment, 256)?,
                    ]);
                }
                if e.negate {
                    line.push(kw("!"));
                }
                let (matcher, pattern) = match e.matcher {
                    TcpMatch::String => (
                        "string",
                        Token::quoted("tcp-check expect string", &e.pattern, MAX_TEXT)?,
                    ),
                    TcpMatch::Rstring => (
                        "rstring",
                        Token::regex("tcp-check expect rstring", &e.pattern, MAX_TEXT)?,
                    ),
                    TcpMatch::Binary => {
                        let hex =
                            Token::restricted("tcp-check expect binary", &e.pattern, "", MAX_TEXT)?;
                        if !e.pattern.bytes().all(|b| b.is_ascii_hexdigit())
                            || e.pattern.len() % 2 == 1
                        {
                            return Err(Invalid {
                                what: "tcp-check expect binary".into(),
                                value: e.pattern.chars().take(40).collect(),
                                reason: "is not an even-length hex string",
                            });
                        }
                        ("binary", hex)
                    }
                    TcpMatch::Rbinary => (
                        "rbinary",
                        Token::regex("tcp-check expect rbinary", &e.pattern, MAX_TEXT)?,
                    ),
                };
                line.extend([Token::keyword(matcher), pattern]);
            }
        }
        lines.push(line);
    }
    Ok(tls)
}

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
const URI_FIELD: usize = 1;
const PORT_FIELD: usize = 2;
const HOST_FIELD: usize = 3;
const FIELDS_PER_STEP: usize = 3;
/// Between the fields of a URI-map value: a URI Go sends never holds it
/// (it starts the fragment, which Go does not send).
const FIELD_SEPARATOR: char = '#';

/// The 1-based `field()` index of a step's field.
fn field(step: usize, which: usize) -> usize {
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

/// The server's check arguments.
fn server_args(
    s: &ServerCheck,
    tls_rule: bool,
    http: bool,
    ctx: &RenderContext,
) -> Result<Vec<Token>, Invalid> {
    let mut args = vec![kw("check")];
    let timer =
        |args: &mut Vec<Token>, name: &'static str, v: Option<u32>| -> Result<(), Invalid> {
            if let Some(ms) = v {
                args.extend([kw(name), positive_ms(name, ms)?]);
            }
            Ok(())
        };
    timer(&mut args, "inter", s.inter_ms)?;
    timer(&mut args, "fastinter", s.fastinter_ms)?;
    timer(&mut args, "downinter", s.downinter_ms)?;
    if let Some(n) = s.rise {
        args.extend([kw("rise"), positive("rise", n)?]);
    }
    if let Some(n) = s.fall {
        args.extend([kw("fall"), positive("fall", n)?]);
    }
    if let Some(p) = s.port {
        args.extend([kw("port"), port("check port", p)?]);
    }
    if let Some(addr) = &s.addr {
        args.extend([kw("addr"), Token::ip_in_brackets("check addr", addr)?]);
    }
    if s.ssl {
        args.push(kw("check-ssl"));
    }
    if s.ssl || tls_rule {
        match s.verify {
            TlsVerify::None => args.extend([kw("verify"), kw("none")]),
            TlsVerify::Required => args.extend([
                kw("verify"),
                kw("required"),
                kw("ca-file"),
                Token::word("ca-file", &ctx.ca_file, 512)?,
            ]),
        }
    }
    if let Some(sni) = &s.sni {
        args.extend([kw("check-sni"), Token::hostname("check-sni", sni)?]);
    }
    if let Some(proto) = &s.proto {
        // HAProxy refuses a multiplexer it does not have; of the backend
        // ones, only h1 and h2 make sense for a check (fcgi needs an fcgi-app).
        // And it only applies to HTTP checks: with any other,
        // HAProxy refuses "an incompatible MUX protocol".
        if !http {
            return Err(Invalid {
                what: "check-proto".into(),
                value: proto.chars().take(20).collect(),
                reason: "needs an HTTP check (option httpchk)",
            });
        }
        if !matches!(proto.as_str(), "h1" | "h2") {
            return Err(Invalid {
                what: "check-proto".into(),
                value: proto.chars().take(20).collect(),
                reason: "is not h1 or h2",
            });
        }
        args.extend([
            kw("check-proto"),
            Token::restricted("check-proto", proto, "", 16)?,
        ]);
    }
    if let Some(alpn) = &s.alpn {
        args.extend([
            kw("check-alpn"),
            Token::restricted("check-alpn", alpn, "-._/,", 64)?,
        ]);
    }
    if let Some(agent) = &s.agent {
        args.extend([
            kw("agent-check"),
            kw("agent-port"),
            port("agent-port", agent.port)?,
        ]);
        if let Some(addr) = &agent.addr {
            args.extend([kw("agent-addr"), Token::ip("agent-addr", addr)?]);
        }
        timer(&mut args, "agent-inter", agent.inter_ms)?;
        if let Some(send) = &agent.send {
            args.extend([
                kw("agent-send"),
                Token::restricted("agent-send", send, "-._:/=", 128)?,
            ]);
        }
    }
    Ok(args)
}
