//! The strict grammar every value from Nomad or a plugin passes before HAProxy sees it.
//!
//! Two places read what we write: the config parser (words split on blanks,
//! `#` starts a comment, quotes and `$` are special) and the runtime socket
//! (`;` separates commands, a newline ends one). The rules here hold for
//! both: no control character, no `;`, no `#` anywhere; bare words also
//! exclude quotes and backslashes; free text is single-quoted (HAProxy's
//! strong quoting: nothing inside is interpreted) and so cannot hold `'`;
//! log-format text doubles `%`. Every length is bounded.

use std::fmt;

/// A value refused by the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} {reason}")]
pub struct Invalid {
    /// What the value is for, e.g. `http-check uri`.
    pub what: String,
    /// The value, shortened for the log.
    pub value: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// Result alias of this module.
pub type Result<T, E = Invalid> = std::result::Result<T, E>;

fn invalid(what: &str, value: &str, reason: &'static str) -> Invalid {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Invalid {
        what: what.to_string(),
        value: shown,
        reason,
    }
}

/// Characters no value may carry, in any context.
fn forbidden_everywhere(c: char) -> bool {
    c.is_control() || c == ';' || c == '#'
}

fn check_len(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(what, value, "is empty"));
    }
    if value.len() > max {
        return Err(invalid(what, value, "is too long"));
    }
    Ok(())
}

/// One validated token, safe in the config and on the runtime socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(String);

impl Token {
    /// A bare word: printable ASCII without blanks, quotes, `\`, `;` or `#`.
    ///
    /// # Errors
    /// Any other character, empty, or over `max` bytes.
    pub fn word(what: &str, value: &str, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        let ok = |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | ';' | '#');
        if value.chars().all(ok) {
            Ok(Token(value.to_string()))
        } else {
            Err(invalid(
                what,
                value,
                "may only hold printable ASCII without blanks, quotes, backslash, ';' or '#'",
            ))
        }
    }

    /// Words joined by `separator` (one of the characters [`Token::word`]
    /// refuses, so no word can hold it): a map value read with `field()`.
    pub fn word_fields(what: &str, value: &str, separator: char, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        for part in value.split(separator) {
            if !part.is_empty() {
                Token::word(what, part, max)?;
            }
        }
        Ok(Token(value.to_string()))
    }

    /// A word from a restricted alphabet (names, methods, protocols).
    ///
    /// # Errors
    /// A character outside `extra` and ASCII alphanumerics, empty, or over `max`.
    pub fn restricted(what: &str, value: &str, extra: &str, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        if value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        {
            Ok(Token(value.to_string()))
        } else {
            Err(invalid(
                what,
                value,
                "holds a character outside its grammar",
            ))
        }
    }

    /// A word for the runtime socket only, such as a domain regex as a map
    /// key: printable ASCII without blanks, quotes, `;` or `#`. Backslashes
    /// are allowed and doubled, because the socket unescapes them (verified
    /// on 2.6: `add map m a\\.b v` stores the key `a\.b`).
    ///
    /// # Errors
    /// Any other character, empty, or over `max` bytes (before doubling).
    ///
    /// # Caveats
    /// Never write it into a config or map file: a map file takes the key
    /// as it is, without unescaping.
    pub fn socket_word(what: &str, value: &str, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        let ok = |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | ';' | '#');
        if value.chars().all(ok) {
            Ok(Token(value.replace('\\', "\\\\")))
        } else {
            Err(invalid(
                what,
                value,
                "may only hold printable ASCII without blanks, quotes, ';' or '#'",
            ))
        }
    }

    /// A DNS name as sent in SNI: letters, digits, `-` and `.`.
    ///
    /// # Errors
    /// Not a plain host name.
    pub fn hostname(what: &str, value: &str) -> Result<Token> {
        let token = Token::restricted(what, value, "-.", 253)?;
        if value.starts_with(['-', '.']) || value.contains("..") {
            return Err(invalid(what, value, "is not a host name"));
        }
        Ok(token)
    }

    /// An IP address literal.
    ///
    /// # Errors
    /// Not an IPv4 or IPv6 literal.
    pub fn ip(what: &str, value: &str) -> Result<Token> {
        value
            .parse::<std::net::IpAddr>()
            .map(|ip| Token(ip.to_string()))
            .map_err(|_| invalid(what, value, "is not an IP address"))
    }

    /// An IP address as a server's `addr` keyword reads it: an IPv6
    /// address in brackets (bare, HAProxy takes its last `:` for a port).
    ///
    /// # Errors
    /// Not an IP address.
    pub fn ip_in_brackets(what: &str, value: &str) -> Result<Token> {
        match value.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => Ok(Token(format!("[{ip}]"))),
            Ok(ip) => Ok(Token(ip.to_string())),
            Err(_) => Err(invalid(what, value, "is not an IP address")),
        }
    }

    /// Lowercase hex of bytes (for `send-binary`), bounded in size.
    ///
    /// # Errors
    /// Empty or over `max_bytes`.
    pub fn hex(what: &str, bytes: &[u8], max_bytes: usize) -> Result<Token> {
        if bytes.is_empty() || bytes.len() > max_bytes {
            return Err(invalid(
                what,
                "<bytes>",
                "must hold 1 byte to the size limit",
            ));
        }
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// A number; always valid.
    pub fn number(value: impl Into<u64>) -> Token {
        Token(value.into().to_string())
    }

    /// A duration in milliseconds, HAProxy's `<n>ms`.
    pub fn millis(ms: u32) -> Token {
        Token(format!("{ms}ms"))
    }

    /// A fixed keyword of our own.
    pub(crate) fn keyword(word: &'static str) -> Token {
        Token(word.to_string())
    }

    /// Free text, single-quoted: no control character, `'`, `;` or `#`.
    ///
    /// # Errors
    /// Any of those characters, empty, or over `max` bytes.
    pub fn quoted(what: &str, value: &str, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        if value.chars().any(|c| forbidden_everywhere(c) || c == '\'') {
            return Err(invalid(
                what,
                value,
                "may not hold control characters, quotes, ';' or '#'",
            ));
        }
        Ok(Token(format!("'{value}'")))
    }

    /// HTTP status codes for `http-check expect status`: a comma-separated
    /// list of three-digit codes and `low-high` ranges, as HAProxy parses
    /// them (it has no `2xx` form: that is `200-299`).
    ///
    /// # Errors
    /// Anything else, an empty item, a range that runs backwards, or over
    /// 64 bytes.
    pub fn status_codes(what: &str, value: &str) -> Result<Token> {
        check_len(what, value, 64)?;
        let code = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit());
        let item_ok = |item: &str| match item.split_once('-') {
            None => code(item),
            Some((low, high)) => code(low) && code(high) && low <= high,
        };
        if value.split(',').all(item_ok) {
            Ok(Token(value.to_string()))
        } else {
            Err(invalid(
                what,
                value,
                "is not a comma-separated list of status codes or ranges such as 200-399 \
                 (HAProxy has no `2xx`: write 200-299)",
            ))
        }
    }

    /// A regular expression, single-quoted like [`Token::quoted`], that
    /// HAProxy's PCRE2 compiles: the pattern must parse as a regex
    /// (`regex-syntax`, a stricter dialect: what it refuses, such as
    /// look-around, is refused here too).
    ///
    /// # Errors
    /// As [`Token::quoted`], or a pattern that does not parse.
    pub fn regex(what: &str, value: &str, max: usize) -> Result<Token> {
        let token = Token::quoted(what, value, max)?;
        let hir = regex_syntax::Parser::new()
            .parse(value)
            .map_err(|_| invalid(what, value, "is not a valid regular expression"))?;
        let ast = regex_syntax::ast::parse::Parser::new()
            .parse(value)
            .map_err(|_| invalid(what, value, "is not a valid regular expression"))?;
        if repeats_an_assertion(&ast) {
            return Err(invalid(
                what,
                value,
                "repeats an assertion or a repetition (`$*`, `a???`), which PCRE refuses",
            ));
        }
        if !repetitions_within(&hir, PCRE_MAX_REPEAT) {
            return Err(invalid(
                what,
                value,
                "repeats more than 65535 times, which PCRE refuses",
            ));
        }
        Ok(token)
    }

    /// Log-format text with literal content: like [`Token::quoted`], with `%` doubled.
    ///
    /// # Errors
    /// As [`Token::quoted`].
    pub fn quoted_literal_log_format(what: &str, value: &str, max: usize) -> Result<Token> {
        let quoted = Token::quoted(what, value, max)?;
        Ok(Token(quoted.0.replace('%', "%%")))
    }

    /// Log-format text with literal content for a config-file line only,
    /// never a runtime command: like [`Token::quoted_literal_log_format`],
    /// but `;` and `#` may appear (inside single quotes the config parser
    /// reads them as text), as in `User-Agent: Nomad/2.0.0 (+url; go1.26)`.
    ///
    /// # Errors
    /// Control characters or a single quote, empty, or over `max`.
    pub fn config_literal_log_format(what: &str, value: &str, max: usize) -> Result<Token> {
        check_len(what, value, max)?;
        if value.chars().any(|c| c.is_control() || c == '\'') {
            return Err(invalid(
                what,
                value,
                "may not hold control characters or single quotes",
            ));
        }
        Ok(Token(format!("'{}'", value.replace('%', "%%"))))
    }

    /// Our own log-format expression (e.g. a map lookup), already trusted.
    pub(crate) fn trusted_log_format(expr: String) -> Token {
        Token(format!("'{expr}'"))
    }

    /// The token as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// PCRE's largest `{n,m}` count.
const PCRE_MAX_REPEAT: u32 = 65_535;

/// Whether `ast` applies a repetition to an assertion (`^*`, `$+?`) or to
/// another repetition (`q???`, `a**`): `regex-syntax` takes them, PCRE
/// refuses them ("quantifier does not follow a repeatable item"). PCRE's
/// possessive `a?+` is refused too: stricter than HAProxy, never looser.
fn repeats_an_assertion(ast: &regex_syntax::ast::Ast) -> bool {
    use regex_syntax::ast::Ast;
    match ast {
        Ast::Repetition(r) => {
            matches!(*r.ast, Ast::Assertion(_) | Ast::Repetition(_)) || repeats_an_assertion(&r.ast)
        }
        Ast::Group(g) => repeats_an_assertion(&g.ast),
        Ast::Concat(c) => c.asts.iter().any(repeats_an_assertion),
        Ast::Alternation(a) => a.asts.iter().any(repeats_an_assertion),
        _ => false,
    }
}

/// Whether every `{n,m}` of `hir` stays within `max`.
fn repetitions_within(hir: &regex_syntax::hir::Hir, max: u32) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Repetition(r) => {
            r.min <= max && r.max.is_none_or(|m| m <= max) && repetitions_within(&r.sub, max)
        }
        HirKind::Capture(c) => repetitions_within(&c.sub, max),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().all(|h| repetitions_within(h, max))
        }
        _ => true,
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Joins tokens with single spaces: one config line or one command's arguments.
pub fn join(tokens: &[Token]) -> String {
    let mut line = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(token.as_str());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_refuse_separators_and_quotes() {
        for bad in ["a b", "a;b", "a#b", "a'b", "a\"b", "a\\b", "a\nb", "é", ""] {
            assert!(Token::word("w", bad, 100).is_err(), "{bad:?}");
        }
        assert_eq!(
            Token::word("w", "/a?b=1&c=%20", 100).unwrap().as_str(),
            "/a?b=1&c=%20"
        );
    }

    #[test]
    fn quoted_text_is_strongly_quoted_and_bounded() {
        assert_eq!(
            Token::quoted("q", "a b $HOME", 100).unwrap().as_str(),
            "'a b $HOME'"
        );
        for bad in ["it's", "a;b", "a#b", "a\rb", "a\0b"] {
            assert!(Token::quoted("q", bad, 100).is_err(), "{bad:?}");
        }
        assert!(Token::quoted("q", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn log_format_literals_double_percent() {
        let t = Token::quoted_literal_log_format("h", "100%[x]", 100).unwrap();
        assert_eq!(t.as_str(), "'100%%[x]'");
    }

    #[test]
    fn socket_words_double_backslashes_and_refuse_separators() {
        let t = Token::socket_word("regex", "^api[0-9]+\\.example\\.com$", 100).unwrap();
        assert_eq!(t.as_str(), "^api[0-9]+\\\\.example\\\\.com$");
        for bad in ["a b", "a;b", "a#b", "a'b", "a\"b", "a\nb", "a\tb", "é", ""] {
            assert!(Token::socket_word("regex", bad, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_codes_follow_haproxy() {
        for good in ["200", "200-399", "200,301,302", "200-299,404"] {
            assert!(Token::status_codes("s", good).is_ok(), "{good:?}");
        }
        for bad in [
            "2xx", "200-", "-399", "399-200", "200,,301", "20", "abc", "",
        ] {
            assert!(Token::status_codes("s", bad).is_err(), "{bad:?}");
        }
        let err = Token::status_codes("http-check expect status", "2xx").unwrap_err();
        assert!(err.to_string().contains("200-299"), "{err}");
    }

    #[test]
    fn regexes_must_compile() {
        assert_eq!(
            Token::regex("r", "^OK [0-9]+", 100).unwrap().as_str(),
            "'^OK [0-9]+'"
        );
        for bad in ["a(", "[z-a]", "*x", "a{2,1}", "a{70000}", "(x{1,65536})"] {
            assert!(Token::regex("r", bad, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_and_ips() {
        assert!(Token::hostname("sni", "api.example.com").is_ok());
        assert!(Token::hostname("sni", "-x").is_err());
        assert!(Token::hostname("sni", "a..b").is_err());
        assert_eq!(Token::ip("addr", "::1").unwrap().as_str(), "::1");
        assert!(Token::ip("addr", "localhost").is_err());
        assert_eq!(
            Token::ip_in_brackets("addr", "::1").unwrap().as_str(),
            "[::1]"
        );
        assert_eq!(
            Token::ip_in_brackets("addr", "10.0.0.1").unwrap().as_str(),
            "10.0.0.1"
        );
        assert!(Token::regex("r", ",0?$*?$.a", 64).is_err());
        assert!(Token::regex("r", "4$bq???-", 64).is_err());
        assert!(Token::regex("r", "a+?b", 64).is_ok());
        assert!(Token::regex("r", "^ok$", 64).is_ok());
    }

    #[test]
    fn refusals_name_the_field() {
        let err = Token::word("http-check uri", "/a;b", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "http-check uri \"/a;b\" may only hold printable ASCII without blanks, quotes, backslash, ';' or '#'"
        );
    }
}
