//! Runtime API command text for each server change, and the replies that mean success.
//!
//! Pure: no socket here. Every name and value becomes command text only
//! through a [`Token`], and the finished line is checked once more for the
//! socket's separators (`;`, newline), so nothing from Nomad or a plugin
//! can smuggle in a second command.
//!
//! Commands go out in `prompt` mode, one per line, all on one connection
//! ([`frame`]); HAProxy answers each with its output followed by `"\n> "`,
//! which [`split_replies`] uses to give every command its own reply.

use crate::haproxy::syntax::{Invalid, Token, join};
use crate::plan::{Refusal, ServerAction, ServerChange, ServerSpec};

mod domains;

pub use domains::{domain_key, for_domain, judge_domain, removal_key};

/// The reply of a successful `add server`.
const ADDED: &str = "New server registered.";
/// The reply of a successful `del server`.
const DELETED: &str = "Server deleted.";
/// HAProxy's refusal of `add server` in a backend with a static algorithm.
const STATIC_BALANCE: &str = "Backend must use a dynamic load balancing";
/// The reply to any command naming a server that does not exist.
const NO_SUCH_SERVER: &str = "No such server.";
/// The reply to any command naming a backend that does not exist.
const NO_SUCH_BACKEND: &str = "No such backend.";

/// One runtime API command and what its reply must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command line, without its newline.
    pub text: String,
    expect: Expect,
}

/// What a successful reply looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Empty.
    Silent,
    /// Exactly this.
    Said(&'static str),
    /// `set server … addr`: "… changed from …" or "no need to change …".
    AddrChanged,
    /// Part of a removal: success, or the server is already gone.
    GoneOr(&'static str),
    /// Empty, or this (a `del map` of a key that is already gone).
    SilentOr(&'static str),
    /// Map upkeep: never fails the change (the map may not be loaded until
    /// a backend uses it; the map file is the truth for the next reload).
    Tolerated,
}

/// Where the change's map entries live, and how to add servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The Host map as a token, if one is configured.
    pub host_map: Option<&'a Token>,
    /// The URI map as a token, if one is configured.
    pub uri_map: Option<&'a Token>,
    /// Re-add a server that was UP just before a reload in an operator's
    /// backend: serving at once instead of waiting for its first check.
    pub restore_up: bool,
}

/// The outcome of one change, judged from its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every command succeeded.
    Applied,
    /// HAProxy refused it for a reason the operator must fix.
    Refused(Refusal),
    /// A command failed: its text and HAProxy's reply.
    Failed {
        /// The command.
        command: String,
        /// HAProxy's reply.
        reply: String,
    },
}

fn kw(word: &'static str) -> Token {
    Token::keyword(word)
}

fn name(what: &str, value: &str) -> Result<Token, Invalid> {
    Token::restricted(what, value, "-_.:", crate::haproxy::names::MAX_NAME)
}

fn line(tokens: &[Token], expect: Expect) -> Result<Command, Invalid> {
    let text = join(tokens);
    if text.contains([';', '\n', '\r']) {
        return Err(Invalid {
            what: "runtime command".into(),
            value: text.chars().take(80).collect(),
            reason: "would hold a command separator",
        });
    }
    Ok(Command { text, expect })
}

/// The commands of one change, in order.
///
/// # Errors
/// A backend or server name, or an address, that is not a valid token
/// (`diff` refuses those first, so this is a second line of defence).
pub fn for_change(change: &ServerChange, ctx: Context<'_>) -> Result<Vec<Command>, Invalid> {
    let backend = name("backend name", &change.backend)?;
    let server = name("server name", &change.server)?;
    let target = Token::word("server target", &format!("{backend}/{server}"), 256)?;
    let t = || target.clone();
    let set = |tail: &[Token]| {
        let mut tokens = vec![kw("set"), kw("server"), t()];
        tokens.extend(tail.iter().cloned());
        line(&tokens, Expect::Silent)
    };
    let mut out = Vec::new();
    match &change.action {
        ServerAction::Add(spec) => add(&mut out, &t(), spec, ctx)?,
        ServerAction::Replace(spec) => {
            remove(&mut out, &t(), &change.server, ctx)?;
            add(
                &mut out,
                &t(),
                spec,
                Context {
                    restore_up: false,
                    ..ctx
                },
            )?;
        }
        ServerAction::Readdress(spec) => {
            let tokens = [
                kw("set"),
                kw("server"),
                t(),
                kw("addr"),
                Token::ip("server address", &spec.addr.to_string())?,
                kw("port"),
                Token::number(spec.port),
            ];
            out.push(line(&tokens, Expect::AddrChanged)?);
        }
        ServerAction::SetMaps(spec) => map_entries(&mut out, spec, ctx, true)?,
        ServerAction::SetWeight(w) => out.push(set(&[kw("weight"), Token::number(*w)])?),
        ServerAction::Enable(spec) => {
            if spec.has_check() {
                out.push(set(&[kw("weight"), Token::number(0u16)])?);
            }
            start(&mut out, &t(), spec, false)?;
        }
        ServerAction::Undrain => out.push(set(&[kw("state"), kw("ready")])?),
        ServerAction::Drain => out.push(set(&[kw("state"), kw("drain")])?),
        ServerAction::Remove => remove(&mut out, &t(), &change.server, ctx)?,
    }
    Ok(out)
}

/// `add server` with weight 0 when checked, then the start sequence.
fn add(
    out: &mut Vec<Command>,
    t: &Token,
    spec: &ServerSpec,
    ctx: Context<'_>,
) -> Result<(), Invalid> {
    map_entries(out, spec, ctx, false)?;
    let quiet_first = spec.has_check() && !ctx.restore_up;
    let weight = if quiet_first { 0 } else { spec.weight };
    let mut tokens = vec![
        kw("add"),
        kw("server"),
        t.clone(),
        Token::word("server address", &spec.address(), 64)?,
        kw("weight"),
        Token::number(weight),
    ];
    tokens.extend(spec.static_args());
    out.push(line(&tokens, Expect::Said(ADDED))?);
    start(out, t, spec, ctx.restore_up)
}

/// Leaves maintenance without traffic before a passing check (haproxy.md §1):
/// leaving MAINT resets health to "up", so the server is marked down right
/// after, and it holds weight 0 in between so that no request can reach it
/// in that window; then it gets its weight and waits for its checks.
fn start(
    out: &mut Vec<Command>,
    t: &Token,
    spec: &ServerSpec,
    restore_up: bool,
) -> Result<(), Invalid> {
    let set = |tail: &[Token]| {
        let mut tokens = vec![kw("set"), kw("server"), t.clone()];
        tokens.extend(tail.iter().cloned());
        line(&tokens, Expect::Silent)
    };
    if spec.has_check() {
        out.push(line(
            &[kw("enable"), kw("health"), t.clone()],
            Expect::Silent,
        )?);
    }
    if spec.has_agent() {
        out.push(line(
            &[kw("enable"), kw("agent"), t.clone()],
            Expect::Silent,
        )?);
    }
    out.push(set(&[kw("state"), kw("ready")])?);
    if spec.has_check() && !restore_up {
        out.push(set(&[kw("health"), kw("down")])?);
        out.push(set(&[kw("weight"), Token::number(spec.weight)])?);
    }
    Ok(())
}

/// Maintenance, shut sessions, delete; drop the map entries.
fn remove(
    out: &mut Vec<Command>,
    t: &Token,
    server: &str,
    ctx: Context<'_>,
) -> Result<(), Invalid> {
    out.push(line(
        &[kw("set"), kw("server"), t.clone(), kw("state"), kw("maint")],
        Expect::GoneOr(""),
    )?);
    out.push(line(
        &[kw("shutdown"), kw("sessions"), kw("server"), t.clone()],
        Expect::GoneOr(""),
    )?);
    out.push(line(
        &[kw("del"), kw("server"), t.clone()],
        Expect::GoneOr(DELETED),
    )?);
    let key = name("server name", server)?;
    for map in [ctx.host_map, ctx.uri_map].into_iter().flatten() {
        out.push(line(
            &[kw("del"), kw("map"), map.clone(), key.clone()],
            Expect::Tolerated,
        )?);
    }
    Ok(())
}

/// Writes the server's entries in the configured maps: `address:port` in
/// the Host map, its check URI in the URI map. `del map` drops every entry
/// of the key first, so there is never a stale duplicate; a new server only
/// needs that where it gets an entry (`clear` also drops the entries it no
/// longer has).
fn map_entries(
    out: &mut Vec<Command>,
    spec: &ServerSpec,
    ctx: Context<'_>,
    clear: bool,
) -> Result<(), Invalid> {
    let key = name("server name", &spec.name)?;
    let host = match spec.host_entry {
        true => Some(Token::word("host entry", &spec.host_value(), 64)?),
        false => None,
    };
    for (map, value) in [(ctx.host_map, host), (ctx.uri_map, spec.uri_entry.clone())] {
        let Some(map) = map else {
            continue;
        };
        if clear || value.is_some() {
            out.push(line(
                &[kw("del"), kw("map"), map.clone(), key.clone()],
                Expect::Tolerated,
            )?);
        }
        if let Some(value) = value {
            out.push(line(
                &[kw("add"), kw("map"), map.clone(), key.clone(), value],
                Expect::Tolerated,
            )?);
        }
    }
    Ok(())
}

/// Judges a change by the replies to its commands (in order).
pub fn judge(change: &ServerChange, commands: &[Command], replies: &[String]) -> Outcome {
    for (command, reply) in commands.iter().zip(replies) {
        let reply = reply.trim();
        if accepts(command.expect, reply) {
            continue;
        }
        let backend = change.backend.clone();
        if reply.starts_with(STATIC_BALANCE) {
            return Outcome::Refused(Refusal::StaticBalance {
                backend,
                reply: reply.to_string(),
            });
        }
        if reply == NO_SUCH_BACKEND {
            return Outcome::Refused(Refusal::NoSuchBackend { backend });
        }
        return Outcome::Failed {
            command: command.text.clone(),
            reply: reply.to_string(),
        };
    }
    cut_short(commands, replies)
}

/// Whether `reply` (trimmed) is what a successful command answers.
fn accepts(expect: Expect, reply: &str) -> bool {
    match expect {
        Expect::Silent => reply.is_empty(),
        Expect::Said(text) => reply == text,
        Expect::AddrChanged => {
            reply.contains("changed from") || reply.contains("no need to change")
        }
        Expect::GoneOr(text) => reply == text || reply == NO_SUCH_SERVER,
        Expect::SilentOr(text) => reply.is_empty() || reply == text,
        Expect::Tolerated => true,
    }
}

/// Applied, unless the connection ended before every command was answered.
fn cut_short(commands: &[Command], replies: &[String]) -> Outcome {
    match commands.get(replies.len()) {
        Some(unanswered) => Outcome::Failed {
            command: unanswered.text.clone(),
            reply: "(no reply: the connection ended)".into(),
        },
        None => Outcome::Applied,
    }
}

/// One connection's worth of commands in `prompt` mode, ending with `quit`.
pub fn frame<'a>(commands: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::from("prompt\n");
    for command in commands {
        text.push_str(command);
        text.push('\n');
    }
    text.push_str("quit\n");
    text
}

/// Splits the output of a [`frame`]d exchange into one reply per command
/// (without the trailing newline); fewer when the connection ended early.
pub fn split_replies(output: &str, commands: usize) -> Vec<String> {
    // The output is: "" (the answer to `prompt`), then every reply, each
    // followed by "\n> "; `quit` answers nothing. A reply is "" or "text\n".
    let mut parts: Vec<&str> = output.split("\n> ").collect();
    // The piece after the last prompt is not a reply.
    parts.pop();
    parts
        .into_iter()
        .skip(1)
        .take(commands)
        .map(|p| p.strip_suffix('\n').unwrap_or(p).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ServerSpec;
    use std::net::IpAddr;

    fn spec(check: bool) -> ServerSpec {
        let mut s = ServerSpec::new("_nomad-a", "10.0.0.1".parse::<IpAddr>().unwrap(), 8080);
        s.weight = 10;
        if check {
            s.check_args = [kw("check"), kw("inter"), Token::millis(500)].into();
        }
        s
    }

    fn change(action: ServerAction) -> ServerChange {
        ServerChange {
            backend: "default_web".into(),
            server: "_nomad-a".into(),
            action,
        }
    }

    fn texts(change: &ServerChange, ctx: Context<'_>) -> Vec<String> {
        for_change(change, ctx)
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect()
    }

    #[test]
    fn add_with_check_takes_no_traffic_before_first_passing_check() {
        let got = texts(&change(ServerAction::Add(spec(true))), Context::default());
        assert_eq!(
            got,
            [
                "add server default_web/_nomad-a 10.0.0.1:8080 weight 0 check inter 500ms",
                "enable health default_web/_nomad-a",
                "set server default_web/_nomad-a state ready",
                "set server default_web/_nomad-a health down",
                "set server default_web/_nomad-a weight 10",
            ]
        );
    }

    #[test]
    fn add_without_check_serves_at_once_and_restore_skips_the_wait() {
        let got = texts(&change(ServerAction::Add(spec(false))), Context::default());
        assert_eq!(
            got,
            [
                "add server default_web/_nomad-a 10.0.0.1:8080 weight 10",
                "set server default_web/_nomad-a state ready",
            ]
        );
        let ctx = Context {
            restore_up: true,
            ..Context::default()
        };
        let got = texts(&change(ServerAction::Add(spec(true))), ctx);
        assert_eq!(got.len(), 3);
        assert!(got[0].contains("weight 10 check"), "{got:?}");
    }

    #[test]
    fn map_entries_follow_add_set_maps_and_remove() {
        let hosts = Token::restricted("map", "/run/hosts.map", "/.", 100).unwrap();
        let uris = Token::restricted("map", "/run/uris.map", "/.", 100).unwrap();
        let ctx = Context {
            host_map: Some(&hosts),
            uri_map: Some(&uris),
            restore_up: false,
        };
        let mut s = spec(true);
        s.host_entry = true;
        s.uri_entry = Some(Token::word("uri", "/ready?x=1", 64).unwrap());
        s.addr = "::1".parse().unwrap();
        let got = texts(&change(ServerAction::Add(s.clone())), ctx);
        assert_eq!(
            got[..4],
            [
                "del map /run/hosts.map _nomad-a",
                "add map /run/hosts.map _nomad-a [::1]:8080",
                "del map /run/uris.map _nomad-a",
                "add map /run/uris.map _nomad-a /ready?x=1",
            ]
        );
        assert!(got[4].starts_with("add server default_web/_nomad-a [::1]:8080 "));
        // A check on another port: the Host is that port's, as Nomad sends it.
        let mut other = s.clone();
        other.check_port = Some(9090);
        let got = texts(&change(ServerAction::SetMaps(other)), ctx);
        assert_eq!(got[1], "add map /run/hosts.map _nomad-a [::1]:9090");
        let got = texts(&change(ServerAction::Readdress(s.clone())), ctx);
        assert_eq!(got, ["set server default_web/_nomad-a addr ::1 port 8080"]);
        s.uri_entry = None;
        let got = texts(&change(ServerAction::SetMaps(s)), ctx);
        assert_eq!(got.len(), 3, "the URI entry is only deleted: {got:?}");
        let got = texts(&change(ServerAction::Remove), ctx);
        assert_eq!(
            got,
            [
                "set server default_web/_nomad-a state maint",
                "shutdown sessions server default_web/_nomad-a",
                "del server default_web/_nomad-a",
                "del map /run/hosts.map _nomad-a",
                "del map /run/uris.map _nomad-a",
            ]
        );
    }

    #[test]
    fn hostile_names_never_reach_the_socket() {
        for bad in ["a;shutdown sessions server x/y", "a\nx", "a b", "a/b"] {
            let mut c = change(ServerAction::Drain);
            c.server = bad.into();
            assert!(for_change(&c, Context::default()).is_err(), "{bad:?}");
            let mut c = change(ServerAction::Drain);
            c.backend = bad.into();
            assert!(for_change(&c, Context::default()).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_name_puts_a_separator_on_the_socket(
            backend in "(?s).{0,40}",
            server in "(?s)[a-z_;\\n -]{0,20}",
            port in 0u16..,
        ) {
            let mut s = spec(true);
            s.name = server.clone();
            s.port = port;
            s.host_entry = true;
            let map = Token::restricted("map", "/run/hosts.map", "/.", 100).unwrap();
            let ctx = Context { host_map: Some(&map), uri_map: Some(&map), restore_up: false };
            for action in [ServerAction::Add(s.clone()), ServerAction::Readdress(s), ServerAction::Remove] {
                let c = ServerChange { backend: backend.clone(), server: server.clone(), action };
                if let Ok(cmds) = for_change(&c, ctx) {
                    for cmd in cmds {
                        proptest::prop_assert!(!cmd.text.contains([';', '\n', '\r', '#']), "{}", cmd.text);
                    }
                }
            }
        }
    }

    #[test]
    fn replies_are_split_per_command() {
        // Captured from HAProxy 2.6.12 in prompt mode.
        let output = "\n> \n> Already exists a server with the same name in backend.\n\n> 1\n# be_id be_name\n3 be 1 s1\n\n> ";
        let replies = split_replies(output, 3);
        assert_eq!(
            replies,
            [
                "",
                "Already exists a server with the same name in backend.",
                "1\n# be_id be_name\n3 be 1 s1",
            ]
        );
        assert_eq!(split_replies("\n> \n> ", 3).len(), 1, "cut short");
        assert_eq!(frame(["a", "b"]), "prompt\na\nb\nquit\n");
    }

    #[test]
    fn judging_replies() {
        let c = change(ServerAction::Add(spec(true)));
        let cmds = for_change(&c, Context::default()).unwrap();
        let ok: Vec<String> = ["New server registered.\n", "", "", "", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(judge(&c, &cmds, &ok), Outcome::Applied);
        let mut refused = ok.clone();
        refused[0] =
            "Backend must use a dynamic load balancing to support dynamic servers.\n".into();
        assert!(matches!(
            judge(&c, &cmds, &refused),
            Outcome::Refused(Refusal::StaticBalance { .. })
        ));
        let mut failed = ok.clone();
        failed[0] = "Already exists a server with the same name in backend.\n".into();
        assert!(matches!(judge(&c, &cmds, &failed), Outcome::Failed { .. }));
        assert!(matches!(judge(&c, &cmds, &ok[..2]), Outcome::Failed { .. }));

        let r = change(ServerAction::Remove);
        let cmds = for_change(&r, Context::default()).unwrap();
        let gone: Vec<String> = vec!["No such server.\n".into(); 3];
        assert_eq!(judge(&r, &cmds, &gone), Outcome::Applied, "already removed");
        let busy: Vec<String> = vec![
            "".into(),
            "".into(),
            "Server still has connections attached to it, cannot remove it.".into(),
        ];
        assert!(matches!(judge(&r, &cmds, &busy), Outcome::Failed { .. }));
    }
}
