//! `prompt` mode on HAProxy's sockets: many commands on one connection, one reply each.

use std::ops::Range;

/// The most command text one connection carries (its [`frame`] included).
///
/// HAProxy's CLI must take a connection's input whole, in one buffer:
/// 3.2.0 stalls once a connection's input outgrows its buffer
/// (`tune.bufsize`, 16 KiB by default), then its watchdog aborts the worker
/// ("A bogus APPCTX is spinning"). Half of the default buffer leaves room
/// for a smaller `tune.bufsize`, and costs a new connection per ~250
/// commands (tens of microseconds on a UNIX socket).
pub const MAX_REQUEST: usize = 8 * 1024;

/// One connection's worth of commands in `prompt` mode, ending with `quit`.
pub fn frame<'a>(commands: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::from(PROMPT);
    for command in commands {
        text.push_str(command);
        text.push('\n');
    }
    text.push_str(QUIT);
    text
}

const PROMPT: &str = "prompt\n";
const QUIT: &str = "quit\n";

/// Splits `commands` into runs of consecutive commands whose [`frame`] is
/// at most `max` bytes; a command too long for that alone gets its own run.
pub fn requests(commands: &[&str], max: usize) -> Vec<Range<usize>> {
    let empty = PROMPT.len() + QUIT.len();
    let mut runs = Vec::new();
    let (mut start, mut size) = (0, empty);
    for (n, command) in commands.iter().enumerate() {
        let more = command.len() + 1;
        if n > start && size + more > max {
            runs.push(start..n);
            (start, size) = (n, empty);
        }
        size += more;
    }
    if start < commands.len() {
        runs.push(start..commands.len());
    }
    runs
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

    #[test]
    fn requests_fit_the_limit_and_keep_every_command_in_order() {
        let long = "x".repeat(40);
        let commands: Vec<&str> = (0..10).map(|_| long.as_str()).collect();
        // Each frame: 12 bytes of prompt and quit, 41 per command.
        let runs = requests(&commands, 12 + 41 * 3);
        assert_eq!(runs, [0..3, 3..6, 6..9, 9..10]);
        for run in &runs {
            assert!(frame(commands[run.clone()].iter().copied()).len() <= 12 + 41 * 3);
        }
        assert_eq!(requests(&commands, 10_000), vec![0..10]);
        // Too long alone: a run of its own, never an empty one.
        assert_eq!(
            requests(&commands, 20),
            (0..10).map(|n| n..n + 1).collect::<Vec<_>>()
        );
        assert!(requests(&[], MAX_REQUEST).is_empty());
    }
}
