//! Every command exits 64 on a config error, and names the key.

use super::{Args, EXIT_CONFIG, run};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A config file in `dir` holding `text`.
fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("connector.toml");
    std::fs::write(&path, text).expect("a temp file");
    path
}

fn exit_of(argv: &[&str]) -> ExitCode {
    let args = Args::try_parse_from(
        std::iter::once("haproxy-nomad-connector").chain(argv.iter().copied()),
    )
    .expect("valid arguments");
    run(args).expect("a config error is an exit status, not a failure")
}

/// Each command with `--config`/`validate` pointing at `path`.
fn every_command(path: &str, job: &str) -> Vec<Vec<String>> {
    [
        vec!["run", "--config", path],
        vec!["plan", "--config", path],
        vec!["explain", "web", "--config", path],
        vec!["validate", path],
        vec!["map", "--job", job, "--config", path],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn a_relative_state_file_exits_64_from_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "[haproxy]\nstate_file = \"nomad-connector.state\"\n",
    );
    let job = dir.path().join("job.json");
    std::fs::write(&job, "{}").unwrap();
    for argv in every_command(&path.to_string_lossy(), &job.to_string_lossy()) {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert_eq!(exit_of(&argv), ExitCode::from(EXIT_CONFIG), "{argv:?}");
    }
}

#[test]
fn bad_values_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "[daemon]\nadmin_listen = \"nowhere\"\n",
        "[nomad]\naddress = \"nomad:4646\"\n",
        "[nomad]\ntoken = \"unterminated\n",
        "[haproxy]\nhost_map = \"/m.map\"\nuri_map = \"/m.map\"\n",
        "[mapping.plugins]\nhttp = \"/nonexistent/plugin.wasm\"\n",
        "[checks]\nhost_map = \"/m.map\"\n",
    ] {
        let path = config(dir.path(), text);
        let path = path.to_string_lossy();
        assert_eq!(
            exit_of(&["validate", &path]),
            ExitCode::from(EXIT_CONFIG),
            "{text}"
        );
        assert_eq!(
            exit_of(&["run", "--config", &path]),
            ExitCode::from(EXIT_CONFIG),
            "{text}"
        );
    }
}

#[test]
fn a_missing_config_file_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    assert_eq!(
        exit_of(&["validate", &path.to_string_lossy()]),
        ExitCode::from(EXIT_CONFIG)
    );
}
