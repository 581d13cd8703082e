//! `target/fidelity.json`: what the run found, case by case, for
//! `tests/bench/fidelity-table.rs` to turn into docs/fidelity.md.

use super::case::{Case, DIFFERENCES, Difference};
use hnc_tests::nomad_checker::{Outcome, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole run.
#[derive(Serialize)]
pub struct Report {
    /// HAProxy's version (`show info`).
    pub haproxy: String,
    /// The Go that judged Nomad's verdicts (`go version`).
    pub go: String,
    /// Every case's check interval.
    pub interval_ms: u64,
    /// Every case's check timeout.
    pub timeout_ms: u64,
    /// How often HAProxy was polled: a time to verdict is exact within this.
    pub poll_ms: u64,
    /// One record per case, in matrix order.
    pub cases: Vec<Record>,
    /// The deliberate differences and the cases that show them.
    pub differences: Vec<DifferenceRecord>,
}

/// One case's outcome.
#[derive(Serialize)]
pub struct Record {
    /// The case's name.
    pub case: &'static str,
    /// Its group (statuses, redirects, ...).
    pub category: &'static str,
    /// The check, as the job spec writes it, in one line.
    pub check: String,
    /// The backend's behaviour, in words.
    pub behaviour: &'static str,
    /// Nomad's verdict.
    pub nomad: Verdict,
    /// Why Nomad decided so.
    pub nomad_why: String,
    /// Who judged Nomad's verdict: Go's net/http, or the reference model
    /// for a tag-declared gRPC probe.
    pub judge: &'static str,
    /// HAProxy's first verdict, if one came.
    pub haproxy: Option<Verdict>,
    /// HAProxy's status and check result when it decided.
    pub haproxy_detail: Option<String>,
    /// HAProxy's verdict equals Nomad's.
    pub agree: bool,
    /// The deliberate difference this case shows, by id.
    pub deliberate: Option<&'static str>,
    /// What HAProxy had to say: Nomad's verdict or the documented one.
    pub expected_haproxy: Verdict,
    /// From the server's first appearance to its first verdict.
    pub time_to_verdict_ms: Option<u64>,
    /// The polling step before the verdict was seen (the time's precision).
    pub resolution_ms: Option<u64>,
    /// The promised bound: interval + timeout (+ rise).
    pub bound_ms: u64,
}

/// A deliberate difference and its cases.
#[derive(Serialize)]
pub struct DifferenceRecord {
    /// Its id.
    pub id: &'static str,
    /// What differs.
    pub title: &'static str,
    /// Why.
    pub why: &'static str,
    /// The cases that show it.
    pub cases: Vec<&'static str>,
}

/// What HAProxy concluded about one case.
pub struct Observation {
    /// Its verdict.
    pub verdict: Verdict,
    /// `show stat`'s status and check result then.
    pub detail: String,
    /// From the server's first appearance to the verdict.
    pub elapsed: Duration,
    /// The polling step before the verdict was seen.
    pub resolution: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Record {
    /// The record of `case`, given Nomad's outcome and what HAProxy did.
    pub fn new(
        case: &Case,
        nomad: Outcome,
        judge: &'static str,
        haproxy: Option<&Observation>,
    ) -> Record {
        let expected = case.expected(nomad.verdict);
        let verdict = haproxy.map(|o| o.verdict);
        Record {
            case: case.name,
            category: case.category,
            check: case.describe(),
            behaviour: case.behaviour,
            nomad: nomad.verdict,
            nomad_why: nomad.why,
            judge,
            haproxy: verdict,
            haproxy_detail: haproxy.map(|o| o.detail.clone()),
            agree: verdict == Some(nomad.verdict),
            deliberate: case.deliberate.map(|(_, d)| d.id),
            expected_haproxy: expected,
            time_to_verdict_ms: haproxy.map(|o| ms(o.elapsed)),
            resolution_ms: haproxy.map(|o| ms(o.resolution)),
            bound_ms: ms(case.bound(verdict.unwrap_or(expected))),
        }
    }
}

impl Report {
    /// The report of a run against `haproxy` with these check timings.
    pub fn new(
        haproxy: &str,
        go: &str,
        poll: Duration,
        cases: &[Case],
        records: Vec<Record>,
    ) -> Report {
        Report {
            haproxy: haproxy.to_string(),
            go: go.to_string(),
            interval_ms: ms(super::case::INTERVAL),
            timeout_ms: ms(super::case::TIMEOUT),
            poll_ms: ms(poll),
            cases: records,
            differences: DIFFERENCES
                .iter()
                .map(|d| DifferenceRecord {
                    id: d.id,
                    title: d.title,
                    why: d.why,
                    cases: shown_by(d, cases),
                })
                .collect(),
        }
    }

    /// Writes it to [`path`].
    ///
    /// # Panics
    /// The file cannot be written.
    pub fn write(&self) -> PathBuf {
        let path = path();
        let json = serde_json::to_string_pretty(self).expect("the report is JSON");
        std::fs::write(&path, json + "\n").expect("write target/fidelity.json");
        path
    }
}

/// The cases that show difference `d`.
pub fn shown_by(d: &Difference, cases: &[Case]) -> Vec<&'static str> {
    cases
        .iter()
        .filter(|c| c.deliberate.is_some_and(|(_, x)| x == d))
        .map(|c| c.name)
        .collect()
}

/// `target/fidelity.json`, beside the workspace's other build output.
pub fn path() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("fidelity.json")
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}
