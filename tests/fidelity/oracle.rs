//! The matrix's Nomad column: Go's own net/http client, set up as Nomad's
//! checker sets it up (`tests/fidelity/oracle`, a small Go program with no
//! third-party modules), run once against the live backends.
//!
//! The Go program is built once per run into the target dir. gRPC probes
//! are tag-declared (Nomad has no gRPC check of its own): those keep the
//! Rust reference checker with Consul's semantics.

use super::case::Case;
use hnc_tests::behaviour::Net;
use hnc_tests::nomad_checker::{self, CheckDef, CheckKind, Outcome, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The Nomad version the oracle's default User-Agent names (Nomad's own
/// checker sends its agent's version).
pub const NOMAD_VERSION: &str = "2.0.0";

/// Who judged a case's Nomad verdict.
pub const GO: &str = "go net/http";
/// Ditto, for a tag-declared gRPC probe.
pub const MODEL: &str = "reference model (gRPC)";

/// One verdict of the oracle.
#[derive(Deserialize)]
struct Answer {
    name: String,
    verdict: String,
    why: String,
}

/// Nomad's verdict on every case, and who judged it.
pub struct Judged {
    /// By case name.
    pub outcomes: BTreeMap<String, (Outcome, &'static str)>,
    /// `go version`.
    pub go: String,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::report::workspace().join("target"))
}

/// Builds the oracle (once per run) and returns its path and Go's version.
///
/// # Panics
/// Go is not installed (`tests/install-deps.sh` installs it) or the build fails.
fn build() -> (PathBuf, String) {
    let source = super::report::workspace().join("tests/fidelity/oracle");
    let out = target_dir().join("fidelity-oracle");
    let go = |args: &[&str]| {
        Command::new("go")
            .args(args)
            .current_dir(&source)
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the fidelity oracle needs Go on PATH (tests/install-deps.sh installs it): {e}"
                )
            })
    };
    let built = go(&["build", "-o", &out.to_string_lossy(), "."]);
    assert!(
        built.status.success(),
        "go build of the fidelity oracle failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let version = go(&["version"]);
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    (out, version)
}

/// The oracle's input line for one check of `case` (`check` as the job
/// writes it), or the verdict when none needs Go (a `PortLabel` the
/// allocation lacks).
fn input(case: &Case, name: &str, check: &Value) -> Result<Value, Outcome> {
    let body = check.get("Body").and_then(Value::as_str).unwrap_or("");
    let check = CheckDef::from_job(check);
    let target = case.target();
    let port = if check.port_label.is_empty() {
        target.port
    } else {
        *target.ports.get(&check.port_label).ok_or_else(|| Outcome {
            verdict: Verdict::Fail,
            why: format!("no port labelled {:?}", check.port_label),
        })?
    };
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header, value) in &check.headers {
        headers
            .entry(header.clone())
            .or_default()
            .push(value.clone());
    }
    let kind = match check.kind {
        CheckKind::Http => "http",
        _ => "tcp",
    };
    Ok(json!({
        "name": name,
        "type": kind,
        "address": format!("{}:{port}", target.address),
        "protocol": check.protocol,
        "method": check.method,
        "path": check.path,
        "headers": headers,
        "body": body,
        "timeout_ms": u64::try_from(check.timeout.as_millis()).unwrap_or(u64::MAX),
        "tls_skip_verify": check.tls_skip_verify,
        "nomad_version": NOMAD_VERSION,
    }))
}

/// Nomad's verdict on a service from its checks' outcomes: every check
/// must pass.
fn all_of(outcomes: Vec<Outcome>) -> Outcome {
    if outcomes.len() == 1 {
        return outcomes.into_iter().next().expect("one");
    }
    let failed: Vec<String> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.verdict == Verdict::Fail)
        .map(|(i, o)| format!("check {}: {}", i + 1, o.why))
        .collect();
    if failed.is_empty() {
        Outcome {
            verdict: Verdict::Pass,
            why: format!("all {} checks pass", outcomes.len()),
        }
    } else {
        Outcome {
            verdict: Verdict::Fail,
            why: failed.join("; "),
        }
    }
}

/// Runs every case's check through the oracle (gRPC through the model).
///
/// # Panics
/// The oracle cannot be built or run, or answers something unreadable.
pub fn judge(cases: &[Case], net: &Net) -> Judged {
    let (binary, go) = build();
    let mut outcomes = BTreeMap::new();
    let mut answers: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut lines = String::new();
    for case in cases {
        let declared = case.declared();
        if declared.kind == CheckKind::Grpc {
            let outcome = nomad_checker::verdict(&declared, &case.target(), net);
            outcomes.insert(case.name.to_string(), (outcome, MODEL));
            continue;
        }
        for (i, check) in case.checks().iter().enumerate() {
            let name = format!("{}#{i}", case.name);
            match input(case, &name, check) {
                Ok(line) => {
                    lines.push_str(&line.to_string());
                    lines.push('\n');
                }
                Err(outcome) => {
                    answers.insert(name, outcome);
                }
            }
        }
    }
    let mut child = Command::new(&binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the fidelity oracle starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write the oracle's input");
    let output = child.wait_with_output().expect("the oracle runs");
    assert!(output.status.success(), "the fidelity oracle failed");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let answer: Answer = serde_json::from_str(line).expect("the oracle answers JSON");
        let verdict = match answer.verdict.as_str() {
            "pass" => Verdict::Pass,
            _ => Verdict::Fail,
        };
        let why = answer.why;
        answers.insert(answer.name, Outcome { verdict, why });
    }
    for case in cases {
        if outcomes.contains_key(case.name) {
            continue;
        }
        let of_case: Vec<Outcome> = (0..case.checks().len())
            .map(|i| {
                answers
                    .remove(&format!("{}#{i}", case.name))
                    .unwrap_or_else(|| panic!("the oracle gave no verdict for {}", case.name))
            })
            .collect();
        outcomes.insert(case.name.to_string(), (all_of(of_case), GO));
    }
    Judged { outcomes, go }
}
