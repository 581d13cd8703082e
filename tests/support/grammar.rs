//! An independent reader of what the connector writes to HAProxy, for
//! property tests: it tokenizes like HAProxy's config parser and checks each
//! line and server argument list against an allowlist of directives and
//! keywords with their arities.

/// Splits a line into words the way HAProxy does for what we emit: blanks
/// separate words; a single-quoted word is taken literally.
///
/// # Errors
/// An unterminated quote, or a quote in the middle of a bare word.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => word.push(c),
                    None => return Err(format!("unterminated quote in {line:?}")),
                }
            }
            if chars.peek().is_some_and(|c| *c != ' ') {
                return Err(format!("text glued to a quoted word in {line:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                if matches!(c, '\'' | '"' | '\\') {
                    return Err(format!("quote or backslash inside a bare word in {line:?}"));
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

/// `line` without its single-quoted parts.
fn unquoted(line: &str) -> String {
    line.split('\'').step_by(2).collect()
}

/// Characters that must never appear in what reaches HAProxy's socket, nor
/// unquoted in its config: a control character, `;` or `#`.
pub fn has_forbidden_char(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || c == ';' || c == '#')
}

/// Server keywords the connector may emit, with the number of values each takes.
const SERVER_KEYWORDS: &[(&str, usize)] = &[
    ("check", 0),
    ("inter", 1),
    ("fastinter", 1),
    ("downinter", 1),
    ("rise", 1),
    ("fall", 1),
    ("port", 1),
    ("addr", 1),
    ("check-ssl", 0),
    ("verify", 1),
    ("ca-file", 1),
    ("check-sni", 1),
    ("check-proto", 1),
    ("check-alpn", 1),
    ("agent-check", 0),
    ("agent-port", 1),
    ("agent-addr", 1),
    ("agent-inter", 1),
    ("agent-send", 1),
];

/// Checks server arguments: known keywords, each with its values, nothing else.
///
/// # Errors
/// What is wrong, with the arguments.
pub fn check_server_args(args: &str) -> Result<(), String> {
    if has_forbidden_char(args) {
        return Err(format!("forbidden character in server args {args:?}"));
    }
    let words = words(args)?;
    let mut i = 0;
    while i < words.len() {
        let Some((_, arity)) = SERVER_KEYWORDS.iter().find(|(k, _)| *k == words[i]) else {
            return Err(format!(
                "unexpected server keyword {:?} in {args:?}",
                words[i]
            ));
        };
        for value in words.iter().skip(i + 1).take(*arity) {
            if value.is_empty() || SERVER_KEYWORDS.iter().any(|(k, _)| k == value) {
                return Err(format!("keyword where a value belongs in {args:?}"));
            }
        }
        if *arity > 0 && i + arity >= words.len() {
            return Err(format!("missing value in {args:?}"));
        }
        i += 1 + arity;
    }
    Ok(())
}

/// Checks one backend line: a known directive, well-formed words.
///
/// # Errors
/// What is wrong, with the line.
pub fn check_backend_line(line: &str) -> Result<(), String> {
    // Backend lines only reach the config file, never the runtime socket:
    // there `;` and `#` inside single quotes are literal text (a header
    // value such as Nomad's own User-Agent). Outside quotes, and control
    // characters anywhere, they stay forbidden.
    if line.chars().any(char::is_control) || has_forbidden_char(&unquoted(line)) {
        return Err(format!("forbidden character in {line:?}"));
    }
    let words = words(line)?;
    let head: Vec<&str> = words.iter().take(2).map(String::as_str).collect();
    let known = matches!(
        head.as_slice(),
        ["option", "httpchk"]
            | ["option", "tcp-check"]
            | ["timeout", "check"]
            | ["http-check", "send" | "expect"]
            | [
                "tcp-check",
                "connect" | "send" | "send-binary" | "expect" | "comment"
            ]
    );
    if !known {
        return Err(format!("unexpected directive in {line:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_catches_what_it_must() {
        assert!(check_server_args("check inter 1000ms rise 1").is_ok());
        assert!(check_server_args("check inter").is_err());
        assert!(check_server_args("check track x/y").is_err());
        assert!(check_server_args("check; del server a/b").is_err());
        assert!(check_backend_line("http-check send meth GET uri / hdr X 'a b'").is_ok());
        assert!(check_backend_line("http-check send hdr X 'a'b").is_err());
        assert!(check_backend_line("use_backend x").is_err());
        assert!(check_backend_line("http-check send hdr X 'a\nb'").is_err());
    }
}
