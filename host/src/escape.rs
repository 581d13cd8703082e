//! Text from outside (Nomad, tags, job specs, plugins, HAProxy) made safe to
//! print on one line: in logs, `map`, `explain`, `plan`, `/readyz` and
//! metric labels, a newline cannot forge another line and an ANSI escape
//! cannot move a terminal's cursor.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` is escaped: control characters (C0 with `\n`, `\r`, `\t` and
/// `ESC`, `DEL`, C1), the Unicode line and paragraph separators, and the
/// bidirectional overrides that reorder what a terminal shows.
fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every such character written as a Rust-style escape (`\n`,
/// `\r`, `\t`, `\u{1b}`); other text, non-ASCII included, is kept.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if s.chars().any(escaped) {
        Cow::Owned(OneLine(s).to_string())
    } else {
        Cow::Borrowed(s)
    }
}

/// Displays a string as [`one_line`] does, without an allocation.
#[derive(Debug, Clone, Copy)]
pub struct OneLine<'a>(pub &'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(escaped) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Appends `s` to `out` as [`one_line`] does.
pub fn push_one_line(out: &mut String, s: &str) {
    let _ = write!(out, "{}", OneLine(s));
}

/// Makes text from a plugin or a tag safe for one log line, and bounded to
/// `max` characters (`…` marks a cut).
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn controls_are_escaped_and_the_rest_is_kept() {
        assert_eq!(one_line("web"), Cow::Borrowed("web"));
        assert_eq!(
            one_line("a\nb\r\tc\u{1b}[31md\u{7f}\u{85}é\u{2028}\u{202e}"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\\u{85}é\\u{2028}\\u{202e}"
        );
        let mut out = String::from("x ");
        push_one_line(&mut out, "1\n2");
        assert_eq!(out, "x 1\\n2");
    }

    proptest! {
        #[test]
        fn one_line_holds_no_line_break_or_escape(s in "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}\\u{2029}])*") {
            let out = one_line(&s);
            prop_assert!(!out.chars().any(escaped), "{out:?}");
            prop_assert_eq!(out.lines().count(), usize::from(!out.is_empty()));
        }
    }
}
