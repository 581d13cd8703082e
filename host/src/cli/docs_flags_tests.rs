//! The docs against clap: every `--flag` that the docs and the README give
//! a connector command is an argument of that command.

use super::Args;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf()
}

/// Every user doc and the README, with its name.
fn docs() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(repo().join("README.md"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("a doc"),
            )
        })
        .collect()
}

/// Code: the inline spans (which may run over a line break, never over a
/// paragraph) and the lines of fenced blocks.
fn code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut paragraph = String::new();
    let mut fenced = false;
    let flush = |paragraph: &mut String, out: &mut Vec<String>| {
        out.extend(paragraph.split('`').skip(1).step_by(2).map(String::from));
        paragraph.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            flush(&mut paragraph, &mut out);
            fenced = !fenced;
        } else if fenced {
            // A line ending in `\` goes on in the next one.
            match out.last_mut().filter(|l: &&mut String| l.ends_with('\\')) {
                Some(last) => {
                    last.pop();
                    last.push_str(line);
                }
                None => out.push(line.to_string()),
            }
        } else if line.trim().is_empty() || line.starts_with('|') || line.starts_with('#') {
            flush(&mut paragraph, &mut out);
            paragraph.push_str(line);
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push_str(line);
            paragraph.push(' ');
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

/// The long flags of a command line.
fn flags(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.trim_start_matches('['))
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// Checks one piece of code; returns the flags it gives the connector and
/// the ones clap does not know. A line that runs the connector
/// (`…/haproxy-nomad-connector SUB …`) or starts with one of its commands
/// is checked against that command; other tools' lines are left alone.
fn check(code: &str, clap: &clap::Command) -> (usize, Vec<String>) {
    let words: Vec<&str> = code.split_whitespace().collect();
    // `NOMAD_ADDR=… haproxy-nomad-connector run …`, not `cargo … -p haproxy-nomad-connector`.
    let program = words.iter().position(|w| !w.contains('='));
    let ran = program.is_some_and(|i| words[i].ends_with("haproxy-nomad-connector"));
    let start = if ran { program.map_or(0, |i| i + 1) } else { 0 };
    let mut command = clap;
    let mut at = start;
    while let Some(sub) = words.get(at).and_then(|w| command.find_subcommand(w)) {
        command = sub;
        at += 1;
    }
    if at == start && !ran {
        return (0, Vec::new());
    }
    let found = flags(&words[at..]);
    let known = |cmd: &clap::Command, flag: &str| {
        flag == "help"
            || flag == "version"
            || cmd.get_arguments().any(|a| a.get_long() == Some(flag))
    };
    let unknown = found
        .iter()
        .filter(|f| !known(command, f.as_str()))
        .cloned()
        .collect();
    (found.len(), unknown)
}

#[test]
fn every_flag_the_docs_give_the_connector_exists() {
    let clap = Args::command();
    let mut checked = 0;
    let mut unknown = Vec::new();
    for (name, text) in docs() {
        for piece in code(&text) {
            let (n, bad) = check(&piece, &clap);
            checked += n;
            unknown.extend(
                bad.into_iter()
                    .map(|f| format!("{name}: --{f} in `{piece}`")),
            );
        }
    }
    assert!(unknown.is_empty(), "flags clap does not have: {unknown:#?}");
    assert!(
        checked >= 8,
        "only {checked} flags found: is the scanner blind?"
    );
}

#[test]
fn the_scanner_checks_the_right_command() {
    let clap = Args::command();
    assert_eq!(check("run --config FILE", &clap), (1, vec![]));
    assert_eq!(
        check("plugin check FILE.wasm [--set KEY=VALUE]", &clap),
        (1, vec![])
    );
    assert_eq!(
        check(
            "target/release/haproxy-nomad-connector validate --job x",
            &clap
        ),
        (1, vec!["job".to_string()])
    );
    assert_eq!(
        check("plan --config c --bogus", &clap),
        (2, vec!["bogus".to_string()])
    );
    assert_eq!(check("cargo build --release", &clap), (0, vec![]));
    assert_eq!(
        check("cargo bench -p haproxy-nomad-connector --bench x", &clap),
        (0, vec![])
    );
    assert_eq!(
        check(
            "NOMAD_ADDR=http://x haproxy-nomad-connector run --config c",
            &clap
        ),
        (1, vec![])
    );
}
