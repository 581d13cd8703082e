//! Runtime API command text for each server change, and the replies that mean success.
//!
//! Pure: no socket here. Every name and value becomes command text only
//! through a [`Token`], and the finished line is checked once more for the
//! socket's separators (`;`, newline), so nothing from Nomad or a plugin
//! can smuggle in a second command.
//!
//! Commands go out in `prompt` mode, one per line, on as few connections
//! as [`MAX_REQUEST`] allows ([`requests`], [`frame`]); HAProxy answers each with its output followed by `"\n> "`,
//! which [`split_replies`] uses to give every command its own reply.

use crate::haproxy::version::Capabilities;
use crate::plan::{Refusal, ServerAction, ServerChange, ServerSpec};
use crate::vocab::syntax::{Invalid, Token, join};
use std::time::Duration;

mod domains;
mod framing;
mod replies;

pub use domains::{for_domain, judge_domain};
pub use framing::{MAX_REQUEST, frame, requests, split_replies};
pub use replies::{Meaning, classify};

/// How long `wait … srv-removable` may hold a removal (3.0 and later): the
/// sessions `shutdown sessions` killed let go within milliseconds; a server
/// still held after this is retried by the driver.
pub const REMOVABLE_WAIT: Duration = Duration::from_millis(500);

/// One runtime API command and what its reply must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command line, without its newline.
    pub text: String,
    expect: Expect,
}

impl Command {
    /// How long HAProxy may take to answer it beyond a plain command
    /// (`wait … srv-removable` blocks for up to its delay).
    pub fn holds_for(&self) -> Duration {
        match self.expect {
            Expect::Removable => REMOVABLE_WAIT,
            _ => Duration::ZERO,
        }
    }
}

/// What a successful reply looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Empty.
    Silent,
    /// A reply with this meaning.
    Means(Meaning),
    /// Part of a removal: empty (or this meaning), or the server is
    /// already gone.
    GoneOr(Option<Meaning>),
    /// Empty, or this meaning (a `del map` of a key that is already gone).
    SilentOr(Meaning),
    /// `wait … srv-removable`: whatever it says, the `del server` after it
    /// decides.
    Removable,
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
    /// What the running HAProxy supports.
    pub caps: Capabilities,
    /// How many entries HAProxy held of the server's key in the Host map
    /// and in the URI map at the last read (0 when none or unknown).
    pub held: Held,
}

/// How many entries of one key HAProxy holds in the Host and URI maps: a
/// key the operator added twice by hand is held twice, and 3.3 and later
/// delete one entry per `del map`, so the driver deletes that many times
/// (at least once; on earlier versions the first deletes them all and the
/// rest answer `Key not found.`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Entries in the Host map.
    pub host: usize,
    /// Entries in the URI map.
    pub uri: usize,
}

/// `del map` of `key`, as many times as `held` (at least once).
fn del_map(out: &mut Vec<Command>, map: &Token, key: &Token, held: usize) -> Result<(), Invalid> {
    for _ in 0..held.max(1) {
        out.push(line(
            &[kw("del"), kw("map"), map.clone(), key.clone()],
            Expect::Tolerated,
        )?);
    }
    Ok(())
}

/// The verdict on one change, judged from its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every command succeeded.
    Applied,
    /// HAProxy refused it for a reason the operator must fix.
    Refused(Refusal),
    /// A removal that sessions still held: worth sending again shortly
    /// (every command of a change can be sent twice).
    Busy {
        /// The command.
        command: String,
        /// HAProxy's reply.
        reply: String,
    },
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
    Token::restricted(what, value, "-_.:", crate::vocab::names::MAX_NAME)
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
                    // The removal just deleted every entry.
                    held: Held::default(),
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
            out.push(line(&tokens, Expect::Means(Meaning::AddrSet))?);
        }
        ServerAction::SetMaps(spec) => map_entries(&mut out, spec, ctx, true)?,
        ServerAction::SetWeight(w) => out.push(set(&[kw("weight"), Token::number(*w)])?),
        ServerAction::Enable(spec) => {
            if spec.has_check() {
                out.push(set(&[kw("weight"), Token::number(0u16)])?);
            }
            start(&mut out, &t(), spec, Start::Quiet)?;
        }
        ServerAction::Undrain => out.push(set(&[kw("state"), kw("ready")])?),
        ServerAction::Drain => out.push(set(&[kw("state"), kw("drain")])?),
        ServerAction::Remove => remove(&mut out, &t(), &change.server, ctx)?,
    }
    Ok(out)
}

/// How a checked server leaves maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Up at once: it was UP just before a reload.
    Up,
    /// Added with `init-state down` (3.1 and later): it leaves maintenance
    /// down by itself.
    InitDown,
    /// Weight 0, out of maintenance, marked down, then its weight (2.6, 3.0).
    Quiet,
}

/// `add server` (with `init-state down`, or with weight 0, when checked),
/// then the start sequence.
fn add(
    out: &mut Vec<Command>,
    t: &Token,
    spec: &ServerSpec,
    ctx: Context<'_>,
) -> Result<(), Invalid> {
    map_entries(out, spec, ctx, false)?;
    let how = match (spec.has_check(), ctx.restore_up, ctx.caps.init_state) {
        (false, ..) | (true, true, _) => Start::Up,
        (true, false, true) => Start::InitDown,
        (true, false, false) => Start::Quiet,
    };
    let weight = if how == Start::Quiet { 0 } else { spec.weight };
    let mut tokens = vec![
        kw("add"),
        kw("server"),
        t.clone(),
        Token::word("server address", &spec.address(), 64)?,
        kw("weight"),
        Token::number(weight),
    ];
    tokens.extend(spec.static_args());
    if how == Start::InitDown {
        tokens.extend([kw("init-state"), kw("down")]);
    }
    out.push(line(&tokens, Expect::Means(Meaning::Added))?);
    start(out, t, spec, how)
}

/// Leaves maintenance without traffic before a passing check (haproxy.md §1).
/// On 2.6 and 3.0 leaving MAINT resets health to "up", so the server is
/// marked down right after, and it holds weight 0 in between so that no
/// request can reach it in that window; then it gets its weight and waits
/// for its checks. A server added with `init-state down` leaves MAINT down
/// and needs neither step.
fn start(out: &mut Vec<Command>, t: &Token, spec: &ServerSpec, how: Start) -> Result<(), Invalid> {
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
    if spec.has_check() && how == Start::Quiet {
        out.push(set(&[kw("health"), kw("down")])?);
        out.push(set(&[kw("weight"), Token::number(spec.weight)])?);
    }
    Ok(())
}

/// Maintenance, shut sessions, wait until they let go (3.0 and later),
/// delete; drop the map entries.
fn remove(
    out: &mut Vec<Command>,
    t: &Token,
    server: &str,
    ctx: Context<'_>,
) -> Result<(), Invalid> {
    out.push(line(
        &[kw("set"), kw("server"), t.clone(), kw("state"), kw("maint")],
        Expect::GoneOr(None),
    )?);
    out.push(line(
        &[kw("shutdown"), kw("sessions"), kw("server"), t.clone()],
        Expect::GoneOr(None),
    )?);
    if ctx.caps.wait_removable {
        let ms = Token::number(REMOVABLE_WAIT.as_millis() as u64);
        out.push(line(
            &[kw("wait"), ms, kw("srv-removable"), t.clone()],
            Expect::Removable,
        )?);
    }
    out.push(line(
        &[kw("del"), kw("server"), t.clone()],
        Expect::GoneOr(Some(Meaning::Deleted)),
    )?);
    let key = name("server name", server)?;
    for (map, held) in [(ctx.host_map, ctx.held.host), (ctx.uri_map, ctx.held.uri)] {
        if let Some(map) = map {
            del_map(out, map, &key, held)?;
        }
    }
    Ok(())
}

/// Writes the server's entries in the configured maps: `address:port` in
/// the Host map, its check URI in the URI map. `del map`, once per entry
/// HAProxy holds, drops every entry of the key first, so there is never a
/// stale duplicate; a new server only needs that where it gets an entry or
/// one is held (`clear` also drops the entries it no longer has).
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
    let maps = [
        (ctx.host_map, host, ctx.held.host),
        (ctx.uri_map, spec.uri_entry.clone(), ctx.held.uri),
    ];
    for (map, value, held) in maps {
        let Some(map) = map else {
            continue;
        };
        if clear || value.is_some() || held > 0 {
            del_map(out, map, &key, held)?;
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

/// Judges a change by the replies to its commands (in order). A reply is
/// read only for what its command can mean: a static balance algorithm
/// only refuses an `add server`, and sessions only hold a `del server`.
pub fn judge(change: &ServerChange, commands: &[Command], replies: &[String]) -> Verdict {
    for (command, reply) in commands.iter().zip(replies) {
        let reply = reply.trim();
        if accepts(command.expect, reply) {
            continue;
        }
        let backend = change.backend.clone();
        let adding = command.expect == Expect::Means(Meaning::Added);
        let deleting = command.expect == Expect::GoneOr(Some(Meaning::Deleted));
        match classify(reply) {
            Some(Meaning::StaticBalance) if adding => {
                return Verdict::Refused(Refusal::StaticBalance {
                    backend,
                    reply: reply.to_string(),
                });
            }
            Some(Meaning::NoSuchBackend) => {
                return Verdict::Refused(Refusal::NoSuchBackend { backend });
            }
            Some(Meaning::StillAttached) if deleting => {
                return Verdict::Busy {
                    command: command.text.clone(),
                    reply: reply.to_string(),
                };
            }
            _ => {}
        }
        return Verdict::Failed {
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
        Expect::Means(meaning) => classify(reply) == Some(meaning),
        Expect::GoneOr(meaning) => {
            let said = classify(reply);
            said == Some(Meaning::NoSuchServer)
                || (meaning.is_none() && reply.is_empty())
                || (meaning.is_some() && said == meaning)
        }
        Expect::SilentOr(meaning) => reply.is_empty() || classify(reply) == Some(meaning),
        Expect::Removable | Expect::Tolerated => true,
    }
}

/// Applied, unless the connection ended before every command was answered.
fn cut_short(commands: &[Command], replies: &[String]) -> Verdict {
    match commands.get(replies.len()) {
        Some(unanswered) => Verdict::Failed {
            command: unanswered.text.clone(),
            reply: "(no reply: the connection ended)".into(),
        },
        None => Verdict::Applied,
    }
}

#[cfg(test)]
mod tests;
