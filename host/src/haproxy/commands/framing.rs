//! `prompt` mode on HAProxy's sockets: many commands on one connection, one reply each.

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
