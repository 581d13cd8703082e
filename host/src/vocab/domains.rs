//! The domain-pattern grammar: how a domain entry matches a request's host,
//! and which patterns may become keys of HAProxy's domain maps.

use super::syntax::{Invalid, Token};

/// The longest exact or prefix pattern: a DNS name.
const MAX_HOST: usize = 253;
/// The longest regex pattern.
const MAX_REGEX: usize = 256;

/// How a domain entry matches a request's host: the three map files an
/// operator's frontend reads with `map_str`, `map_beg` and `map_reg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DomainMatch {
    /// The whole host (`haproxy.domain=api.example.com`).
    Exact,
    /// The host's beginning (`haproxy.domain.prefix=api.`).
    Prefix,
    /// A regular expression over the host (`haproxy.domain.regex=^api[0-9]+\\.`).
    Regex,
}

/// A domain pattern as a map key on the runtime socket.
///
/// Exact and prefix patterns are lowercase host names or their beginnings:
/// letters, digits, `-`, `.` and `_` (the frontend lowercases the `Host`
/// header before the lookup, so an uppercase pattern could never match). A
/// regex is printable ASCII without blanks, quotes, `;` or `#`, with its
/// backslashes doubled for the socket ([`Token::socket_word`]).
///
/// # Errors
/// A pattern outside the grammar of its kind, empty or too long.
pub fn domain_key(kind: DomainMatch, pattern: &str) -> Result<Token, Invalid> {
    let what = match kind {
        DomainMatch::Exact => "exact domain",
        DomainMatch::Prefix => "domain prefix",
        DomainMatch::Regex => return Token::socket_word("domain regex", pattern, MAX_REGEX),
    };
    let token = Token::restricted(what, pattern, "-._", MAX_HOST)?;
    if pattern.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Invalid {
            what: what.into(),
            value: pattern.into(),
            reason: "must be lowercase: the frontend lowercases the host before the lookup",
        });
    }
    Ok(token)
}

/// Any key HAProxy holds, as the socket must carry it to delete it: also
/// keys an operator added outside the grammar of their kind, such as an
/// uppercase host.
///
/// # Errors
/// A key with a blank, a quote, `;` or `#`: it cannot go on the socket safely.
pub fn removal_key(pattern: &str) -> Result<Token, Invalid> {
    Token::socket_word("map key", pattern, 4 * MAX_REGEX)
}
