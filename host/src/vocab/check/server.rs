//! The server line's check arguments: timing, port, TLS, agent.

use super::{RenderContext, kw, port, positive, positive_ms};
use crate::vocab::syntax::{Invalid, Token};
use hnc_core::model::{ServerCheck, TlsVerify};

/// The server's check arguments.
pub(super) fn server_args(
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
