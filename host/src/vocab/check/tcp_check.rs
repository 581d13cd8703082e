//! TCP checks: `option tcp-check` and its `tcp-check` rules.

use super::{MAX_BINARY, MAX_RULES, MAX_TEXT, count, kw, port, too_many};
use crate::vocab::syntax::{Invalid, Token};
use hnc_core::model::{TcpCheckRule, TcpMatch};

/// `option tcp-check` and its rules; returns whether a rule connects with TLS.
pub(super) fn tcp_check_lines(
    rules: &[TcpCheckRule],
    lines: &mut Vec<Vec<Token>>,
) -> Result<bool, Invalid> {
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
