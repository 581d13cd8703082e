//! HTTP checks: `option httpchk`, and the `http-check send` and `expect` lines.

use super::steps::{HOST_FIELD, URI_FIELD, field};
use super::{
    HTTP_TOKEN_CHARS, MAX_BODY, MAX_HEADERS, MAX_RULES, MAX_TEXT, MAX_URI, RenderContext, kw,
    map_path, too_many,
};
use crate::vocab::syntax::{Invalid, Token};
use hnc_core::model::{HttpCheck, HttpMatch};

/// What an HTTP check asks of the per-server maps.
pub(super) struct MapUse {
    pub(super) host_map: bool,
    pub(super) uri_entry: Option<Token>,
}

/// `option httpchk` and its rules.
pub(super) fn http_lines(
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
pub(super) fn http_rules(
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
