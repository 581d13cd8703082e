//! HAProxy's verdict against Nomad's, for one server: pure functions and a
//! small state machine ([`Tracker`]) that confirms a disagreement only once
//! it has lasted longer than the check's interval + timeout (the time
//! either side may need to see a change the other saw first).

use crate::nomad::{CheckResult, CheckStatus};
use std::time::Duration;
use tokio::time::Instant;

/// Which way a verdict goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// HAProxy: UP (or draining, or stopping); Nomad: every check `success`.
    Passing,
    /// HAProxy: DOWN; Nomad: a check `failure`.
    Failing,
}

impl Side {
    /// `passing` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Passing => "passing",
            Side::Failing => "failing",
        }
    }
}

/// One side's verdict with what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Passing or failing.
    pub side: Side,
    /// HAProxy: its `show stat` status and last check (`DOWN L7STS 503
    /// Service Unavailable`); Nomad: the check's status and output.
    pub output: String,
    /// The Nomad check the verdict is about (empty for HAProxy's).
    pub check: String,
}

/// HAProxy's verdict from its `show stat` status and last check; `None`
/// when HAProxy has none (maintenance, no check, unknown status).
pub fn haproxy(status: &str, check_status: &str, last_check: &str) -> Option<Verdict> {
    let side = match status.split_whitespace().next().unwrap_or("") {
        "UP" | "DRAIN" | "NOLB" => Side::Passing,
        "DOWN" => Side::Failing,
        _ => return None,
    };
    let output = bounded(
        [status, check_status, last_check]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    );
    Some(Verdict {
        side,
        output,
        check: String::new(),
    })
}

/// Nomad's verdict on `service` from an allocation's check results:
/// failing when a check failed (the first failing one named), passing when
/// every check succeeded (`first` named, the check HAProxy's rules start
/// with, else the first result); `None` while a check is pending or the
/// service has no result.
pub fn nomad(results: &[CheckResult], service: &str, first: &str) -> Option<Verdict> {
    let mine: Vec<&CheckResult> = results.iter().filter(|r| r.service == service).collect();
    if mine.is_empty() {
        return None;
    }
    if let Some(failed) = mine.iter().find(|r| r.verdict() == CheckStatus::Failing) {
        return Some(describe(failed, Side::Failing));
    }
    if mine.iter().any(|r| r.verdict() != CheckStatus::Passing) {
        return None;
    }
    let named = mine.iter().find(|r| r.check == first).unwrap_or(&mine[0]);
    Some(describe(named, Side::Passing))
}

/// At most this many characters of an output are kept (an HTTP check's
/// output is the response body).
const MAX_OUTPUT: usize = 256;

fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_OUTPUT {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_OUTPUT).collect();
    cut.push('…');
    cut
}

fn describe(r: &CheckResult, side: Side) -> Verdict {
    Verdict {
        side,
        output: bounded(match r.status_code {
            0 => format!("{} {}", r.status, r.output.trim()),
            code => format!("{} {code} {}", r.status, r.output.trim()),
        }),
        check: r.check.clone(),
    }
}

/// A confirmed disagreement: both verdicts and what they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// HAProxy's.
    pub haproxy: Verdict,
    /// Nomad's.
    pub nomad: Verdict,
    /// How long it had lasted when it was confirmed.
    pub lasted: Duration,
}

/// What the monitor does after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing new.
    Nothing,
    /// A disagreement began: read Nomad again at this instant.
    RecheckAt(Instant),
    /// It lasted longer than interval + timeout: count and log it, once.
    Confirmed(Disagreement),
    /// A confirmed disagreement ended.
    Resolved(Disagreement),
}

/// One server's comparison over time.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Since when the two verdicts differ, as first seen.
    since: Option<Instant>,
    /// The disagreement counted, while it lasts.
    confirmed: Option<Disagreement>,
}

impl Tracker {
    /// Compares the two verdicts now; `settle` is the check's interval +
    /// timeout.
    pub fn observe(
        &mut self,
        haproxy: Option<&Verdict>,
        nomad: Option<&Verdict>,
        now: Instant,
        settle: Duration,
    ) -> Step {
        let (Some(h), Some(n)) = (haproxy, nomad) else {
            // One side has no verdict: nothing to compare, nothing ends.
            return Step::Nothing;
        };
        if h.side == n.side {
            self.since = None;
            return match self.confirmed.take() {
                Some(d) => Step::Resolved(Disagreement {
                    haproxy: h.clone(),
                    nomad: n.clone(),
                    ..d
                }),
                None => Step::Nothing,
            };
        }
        if self.confirmed.is_some() {
            return Step::Nothing;
        }
        let since = *self.since.get_or_insert(now);
        let lasted = now.saturating_duration_since(since);
        if lasted <= settle {
            return Step::RecheckAt(since + settle + Duration::from_millis(1));
        }
        let d = Disagreement {
            haproxy: h.clone(),
            nomad: n.clone(),
            lasted,
        };
        self.confirmed = Some(d.clone());
        Step::Confirmed(d)
    }

    /// The disagreement counted now, if any.
    pub fn confirmed(&self) -> Option<&Disagreement> {
        self.confirmed.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(service: &str, check: &str, status: &str) -> CheckResult {
        CheckResult {
            service: service.into(),
            check: check.into(),
            status: status.into(),
            output: format!("out-{check}"),
            ..CheckResult::default()
        }
    }

    #[test]
    fn haproxy_statuses_map_to_verdicts() {
        let side = |s| haproxy(s, "", "").map(|v| v.side);
        assert_eq!(side("UP"), Some(Side::Passing));
        assert_eq!(side("UP 1/3"), Some(Side::Passing));
        assert_eq!(side("DRAIN"), Some(Side::Passing));
        assert_eq!(side("DOWN"), Some(Side::Failing));
        assert_eq!(side("DOWN 1/2"), Some(Side::Failing));
        assert_eq!(side("MAINT"), None);
        assert_eq!(side("no check"), None);
        let v = haproxy("DOWN", "L7STS", "503 Service Unavailable").unwrap();
        assert_eq!(v.output, "DOWN L7STS 503 Service Unavailable");
    }

    #[test]
    fn nomad_fails_on_any_failure_and_passes_only_when_all_pass() {
        let all = [
            result("web", "a", "success"),
            result("web", "b", "success"),
            result("api", "c", "failure"),
        ];
        let v = nomad(&all, "web", "b").unwrap();
        assert_eq!((v.side, v.check.as_str()), (Side::Passing, "b"));
        assert_eq!(v.output, "success out-b");
        assert_eq!(nomad(&all, "api", "").unwrap().side, Side::Failing);
        assert_eq!(nomad(&all, "none", ""), None);
        let pending = [result("web", "a", "success"), result("web", "b", "pending")];
        assert_eq!(nomad(&pending, "web", "a"), None);
        let failing = [result("web", "a", "pending"), result("web", "b", "failure")];
        assert_eq!(nomad(&failing, "web", "a").unwrap().check, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn a_disagreement_counts_once_after_interval_plus_timeout_and_then_resolves() {
        let settle = Duration::from_secs(3);
        let up = haproxy("UP", "L7OK", "200").unwrap();
        let down = haproxy("DOWN", "L7STS", "503").unwrap();
        let passing = nomad(&[result("web", "a", "success")], "web", "a").unwrap();
        let mut t = Tracker::default();
        let t0 = Instant::now();
        assert_eq!(
            t.observe(Some(&up), Some(&passing), t0, settle),
            Step::Nothing
        );
        // A flap shorter than interval + timeout is not counted.
        let step = t.observe(Some(&down), Some(&passing), t0, settle);
        assert!(matches!(step, Step::RecheckAt(at) if at > t0 + settle));
        assert_eq!(
            t.observe(Some(&up), Some(&passing), t0 + settle, settle),
            Step::Nothing
        );
        assert!(t.confirmed().is_none());
        // A lasting one is counted once.
        let t1 = t0 + Duration::from_secs(10);
        assert!(matches!(
            t.observe(Some(&down), Some(&passing), t1, settle),
            Step::RecheckAt(_)
        ));
        let t2 = t1 + Duration::from_secs(4);
        let Step::Confirmed(d) = t.observe(Some(&down), Some(&passing), t2, settle) else {
            panic!("confirmed")
        };
        assert_eq!(d.lasted, Duration::from_secs(4));
        assert_eq!(
            t.observe(Some(&down), Some(&passing), t2, settle),
            Step::Nothing
        );
        // No verdict on one side ends nothing; agreement does.
        assert_eq!(t.observe(None, Some(&passing), t2, settle), Step::Nothing);
        assert!(t.confirmed().is_some());
        assert!(matches!(
            t.observe(Some(&up), Some(&passing), t2, settle),
            Step::Resolved(_)
        ));
        assert!(t.confirmed().is_none());
    }
}
