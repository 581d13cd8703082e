//! Runtime API command text for domain map changes, and their replies.
//!
//! Verified on HAProxy 2.6.12: `add map`, `set map` and `del map` answer
//! nothing on success; `del map` drops every entry of the key and answers
//! `Key not found.` when there is none; `set map` changes every entry of
//! the key; `add map` of a regex PCRE cannot compile answers `regex '…' is
//! invalid (…)` and adds nothing; the socket unescapes backslashes, so a
//! regex goes out with each `\` doubled.

use super::{Command, Expect, Meaning, Verdict, accepts, cut_short, kw, line, name};
use crate::plan::Refusal;
use crate::plan::change::{DomainAction, DomainChange};
use crate::vocab::domains::{domain_key, removal_key};
use crate::vocab::syntax::{Invalid, Token};

/// The most `del map` commands sent for one key: more duplicates than
/// this are removed over the next syncs.
const MAX_DELS: usize = 64;
/// How `add map` refuses a regex the PCRE library cannot compile.
const INVALID_REGEX: (&str, &str) = ("regex '", "' is invalid");

/// The commands of one domain change on the map file `map`, in order;
/// `held` is how many entries of the key HAProxy held when the change was
/// planned. A reset or a removal deletes that many times: one `del map`
/// removes every entry of the key up to 3.2 (the others then answer `Key
/// not found.`), but only one from 3.3 on, so this converges on both.
///
/// # Errors
/// A pattern outside its grammar or an invalid backend name (`diff`
/// refuses those first, so this is a second line of defence).
pub fn for_domain(
    change: &DomainChange,
    map: &Token,
    held: usize,
) -> Result<Vec<Command>, Invalid> {
    let key = match change.action {
        DomainAction::Remove => removal_key(&change.pattern)?,
        _ => domain_key(change.kind, &change.pattern)?,
    };
    let del = line(
        &[kw("del"), kw("map"), map.clone(), key.clone()],
        Expect::SilentOr(Meaning::KeyNotFound),
    )?;
    let dels = vec![del; held.clamp(1, MAX_DELS)];
    let write = |verb: &'static str, backend: &str| {
        let value = name("backend name", backend)?;
        line(
            &[kw(verb), kw("map"), map.clone(), key.clone(), value],
            Expect::Silent,
        )
    };
    Ok(match &change.action {
        DomainAction::Add(backend) => vec![write("add", backend)?],
        DomainAction::Set(backend) => vec![write("set", backend)?],
        DomainAction::Reset(backend) => {
            let mut cmds = dels;
            cmds.push(write("add", backend)?);
            cmds
        }
        DomainAction::Remove => dels,
    })
}

/// Judges a domain change by the replies to its commands (in order): a
/// regex HAProxy cannot compile is a refusal naming the pattern, the
/// backend and HAProxy's reason.
pub fn judge_domain(change: &DomainChange, commands: &[Command], replies: &[String]) -> Verdict {
    for (command, reply) in commands.iter().zip(replies) {
        let reply = reply.trim();
        if accepts(command.expect, reply) {
            continue;
        }
        let (start, middle) = INVALID_REGEX;
        if let Some(backend) = change.backend()
            && reply.starts_with(start)
            && reply.contains(middle)
        {
            return Verdict::Refused(Refusal::DomainRefused {
                kind: change.kind,
                pattern: change.pattern.clone(),
                backend: backend.to_string(),
                reply: reply.to_string(),
            });
        }
        return Verdict::Failed {
            command: command.text.clone(),
            reply: reply.to_string(),
        };
    }
    cut_short(commands, replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::DomainMatch;

    fn map() -> Token {
        Token::restricted("map", "/var/lib/haproxy/d.map", "/._-", 100).unwrap()
    }

    fn change(kind: DomainMatch, pattern: &str, action: DomainAction) -> DomainChange {
        DomainChange {
            kind,
            pattern: pattern.into(),
            action,
        }
    }

    fn texts(c: &DomainChange) -> Vec<String> {
        for_domain(c, &map(), 1)
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect()
    }

    #[test]
    fn domain_commands_add_set_reset_and_remove_one_key() {
        let exact = |a| change(DomainMatch::Exact, "api.example.com", a);
        assert_eq!(
            texts(&exact(DomainAction::Add("default_api".into()))),
            ["add map /var/lib/haproxy/d.map api.example.com default_api"]
        );
        assert_eq!(
            texts(&exact(DomainAction::Set("default_www".into()))),
            ["set map /var/lib/haproxy/d.map api.example.com default_www"]
        );
        assert_eq!(
            texts(&exact(DomainAction::Reset("default_api".into()))),
            [
                "del map /var/lib/haproxy/d.map api.example.com",
                "add map /var/lib/haproxy/d.map api.example.com default_api"
            ]
        );
        assert_eq!(
            texts(&exact(DomainAction::Remove)),
            ["del map /var/lib/haproxy/d.map api.example.com"]
        );
    }

    #[test]
    fn regex_keys_go_out_with_doubled_backslashes() {
        let c = change(
            DomainMatch::Regex,
            r"^api[0-9]+\.example\.com$",
            DomainAction::Add("default_api".into()),
        );
        assert_eq!(
            texts(&c),
            [r"add map /var/lib/haproxy/d.map ^api[0-9]+\\.example\\.com$ default_api"]
        );
    }

    #[test]
    fn patterns_outside_their_grammar_are_refused() {
        for (kind, bad) in [
            (DomainMatch::Exact, "API.example.com"),
            (DomainMatch::Exact, "a b"),
            (DomainMatch::Exact, "*.example.com"),
            (DomainMatch::Prefix, "api;del map x y"),
            (DomainMatch::Prefix, ""),
            (DomainMatch::Regex, "^a b$"),
            (DomainMatch::Regex, "^a;show map$"),
            (DomainMatch::Regex, "^a#$"),
            (DomainMatch::Regex, "^a'$"),
            (DomainMatch::Regex, "^a\n$"),
        ] {
            assert!(domain_key(kind, bad).is_err(), "{kind:?} {bad:?}");
            let c = change(kind, bad, DomainAction::Add("be".into()));
            assert!(for_domain(&c, &map(), 1).is_err(), "{kind:?} {bad:?}");
        }
        // An operator's uppercase key can still be removed; a key that
        // would break the socket cannot.
        let foreign = change(DomainMatch::Exact, "API.example.com", DomainAction::Remove);
        assert_eq!(
            texts(&foreign),
            ["del map /var/lib/haproxy/d.map API.example.com"]
        );
        let hostile = change(DomainMatch::Exact, "a;b", DomainAction::Remove);
        assert!(for_domain(&hostile, &map(), 1).is_err());
        assert!(domain_key(DomainMatch::Exact, &"a".repeat(254)).is_err());
        assert!(domain_key(DomainMatch::Prefix, "api.").is_ok());
        let bad_backend = change(
            DomainMatch::Exact,
            "a.example.com",
            DomainAction::Add("x y".into()),
        );
        assert!(for_domain(&bad_backend, &map(), 1).is_err());
    }

    #[test]
    fn judging_domain_replies() {
        let add = change(
            DomainMatch::Regex,
            "^(unclosed",
            DomainAction::Add("default_api".into()),
        );
        let cmds = for_domain(&add, &map(), 1).unwrap();
        assert_eq!(judge_domain(&add, &cmds, &["".into()]), Verdict::Applied);
        // Captured from HAProxy 2.6.12.
        let refused =
            "regex '^(unclosed' is invalid (error=missing closing parenthesis, erroffset=10).\n";
        assert_eq!(
            judge_domain(&add, &cmds, &[refused.into()]),
            Verdict::Refused(Refusal::DomainRefused {
                kind: DomainMatch::Regex,
                pattern: "^(unclosed".into(),
                backend: "default_api".into(),
                reply: refused.trim().into(),
            })
        );
        let unknown = "Unknown map identifier. Please use #<id> or <file>.\n";
        assert!(matches!(
            judge_domain(&add, &cmds, &[unknown.into()]),
            Verdict::Failed { .. }
        ));
        assert!(matches!(
            judge_domain(&add, &cmds, &[]),
            Verdict::Failed { .. }
        ));

        let remove = change(DomainMatch::Exact, "a.example.com", DomainAction::Remove);
        let cmds = for_domain(&remove, &map(), 1).unwrap();
        let gone = ["Key not found.\n".to_string()];
        assert_eq!(judge_domain(&remove, &cmds, &gone), Verdict::Applied);
        // A key held twice: deleted twice, whichever version answers.
        let twice = change(
            DomainMatch::Exact,
            "a.example.com",
            DomainAction::Reset("b".into()),
        );
        let cmds = for_domain(&twice, &map(), 2).unwrap();
        assert_eq!(cmds.len(), 3);
        for dels in [["", "Key not found.", ""], ["", "", ""]] {
            let replies = dels.map(String::from);
            assert_eq!(
                judge_domain(&twice, &cmds, &replies),
                Verdict::Applied,
                "{dels:?}"
            );
        }
        let set = change(
            DomainMatch::Exact,
            "a.example.com",
            DomainAction::Set("b".into()),
        );
        let cmds = for_domain(&set, &map(), 1).unwrap();
        assert!(matches!(
            judge_domain(&set, &cmds, &["entry not found.\n".into()]),
            Verdict::Failed { .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn no_pattern_puts_a_separator_on_the_socket(
            pattern in "(?s).{0,40}",
            kind in proptest::sample::select(vec![DomainMatch::Exact, DomainMatch::Prefix, DomainMatch::Regex]),
        ) {
            for action in [DomainAction::Add("be".into()), DomainAction::Reset("be".into()), DomainAction::Remove] {
                let c = DomainChange { kind, pattern: pattern.clone(), action };
                if let Ok(cmds) = for_domain(&c, &map(), 1) {
                    for cmd in cmds {
                        proptest::prop_assert!(!cmd.text.contains([';', '\n', '\r', '#']), "{}", cmd.text);
                        proptest::prop_assert_eq!(cmd.text.split(' ').count(), if cmd.text.starts_with("del") { 4 } else { 5 });
                    }
                }
            }
        }
    }
}
