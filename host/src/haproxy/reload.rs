//! Reloads: the coalescing gate, `show proc`, and a reload confirmed through the master socket.

use super::error::{Error, Result};
use super::socket::Socket;
use super::version::{Capabilities, worker_pid};
use std::time::{Duration, Instant};

/// Coalesces backend-level changes into one reload per window.
///
/// The first change opens a window of `delay`; every apply within it only
/// notes that a reload is wanted; the first apply after it reloads, with the
/// desired state of that moment. A burst of changes thus costs one reload,
/// and no change waits longer than `delay` (plus the daemon's requeue).
#[derive(Debug, Clone)]
pub struct ReloadGate {
    delay: Duration,
    opened: Option<Instant>,
    /// A reload has been let through: the first one of the process does
    /// not wait (at start-up the whole world is planned at once, so there
    /// is nothing to coalesce with).
    used: bool,
}

/// What the gate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Reload now.
    Now,
    /// Wait this long, then apply again.
    Wait(Duration),
}

impl ReloadGate {
    /// A gate with the given window.
    pub fn new(delay: Duration) -> ReloadGate {
        ReloadGate {
            delay,
            opened: None,
            used: false,
        }
    }

    /// A reload is wanted at `now`.
    pub fn poll(&mut self, now: Instant) -> Gate {
        if !std::mem::replace(&mut self.used, true) {
            return Gate::Now;
        }
        let opened = *self.opened.get_or_insert(now);
        let due = opened + self.delay;
        if now >= due {
            Gate::Now
        } else {
            Gate::Wait(due - now)
        }
    }

    /// The reload happened, or is no longer wanted.
    pub fn close(&mut self) {
        self.opened = None;
    }
}

/// The master's `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    /// The master's PID.
    pub master_pid: u32,
    /// Reloads since the master started (failed ones included).
    pub reloads: u32,
    /// Reloads that failed to load the new config.
    pub failed: u32,
    /// Workers as (PID, reloads they have survived); the current one has 0.
    pub workers: Vec<(u32, u32)>,
}

impl Processes {
    /// The current worker: the one that has survived no reload.
    pub fn current_worker(&self) -> Option<u32> {
        self.workers
            .iter()
            .find(|(_, r)| *r == 0)
            .map(|(pid, _)| *pid)
    }
}

/// Reads `show proc` (2.6: `<PID> master <reloads> [failed: <n>] …`).
///
/// # Errors
/// [`Error::BadReply`] without a master line.
pub fn parse_show_proc(text: &str) -> Result<Processes> {
    let bad = || Error::BadReply {
        what: "show proc",
        reply: text.chars().take(300).collect(),
    };
    let mut master = None;
    let mut workers = Vec::new();
    let mut section = "master";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            section = name.trim();
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match (section, f.as_slice()) {
            ("master", [pid, "master", reloads, "[failed:", failed, ..]) => {
                let n = |s: &str| s.trim_end_matches(']').parse::<u32>().ok();
                master = Some((n(pid), n(reloads), n(failed)));
            }
            ("workers", [pid, "worker", reloads, ..]) => {
                if let (Ok(pid), Ok(reloads)) = (pid.parse(), reloads.parse()) {
                    workers.push((pid, reloads));
                }
            }
            _ => {}
        }
    }
    match master {
        Some((Some(master_pid), Some(reloads), Some(failed))) => Ok(Processes {
            master_pid,
            reloads,
            failed,
            workers,
        }),
        _ => Err(bad()),
    }
}

/// A confirmed reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// The new worker, which now answers on the stats socket.
    pub worker_pid: u32,
    /// The master's reload count after it.
    pub reloads: u32,
}

/// The master's answer to `reload` on 2.7 and later: `Success=1` or
/// `Success=0`, `--`, then the start-up log of the new worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadAnswer {
    /// The new worker loaded its config.
    Loaded,
    /// It did not: the first `[ALERT]` line of the log, if any (control
    /// characters dropped, shortened).
    Failed(Option<String>),
}

/// Reads the master's answer to `reload` (2.7 and later).
///
/// # Errors
/// [`Error::BadReply`] when it starts with neither `Success=1` nor
/// `Success=0`.
pub fn parse_reload_answer(text: &str) -> Result<ReloadAnswer> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("Success=1") => Ok(ReloadAnswer::Loaded),
        Some("Success=0") => Ok(ReloadAnswer::Failed(lines.find_map(alert))),
        _ => Err(Error::BadReply {
            what: "reload",
            reply: text.chars().take(200).collect(),
        }),
    }
}

/// The message of a start-up log line `[ALERT]    (<pid>) : <message>`.
fn alert(line: &str) -> Option<String> {
    let rest = line.strip_prefix("[ALERT]")?;
    let message = rest.split_once(" : ").map_or(rest, |(_, m)| m).trim();
    Some(
        message
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect(),
    )
}

/// Reloads through the master socket and waits until a new worker answers
/// on the stats socket. On 2.7 and later the master answers `reload` once
/// the new worker has loaded or failed, so that answer is read first,
/// within `limit`; 2.6 answers nothing, and `show proc` tells.
///
/// # Errors
/// [`Error::ReloadFailed`] when the master reports or counts a failed
/// reload (the old worker keeps serving; the error names HAProxy's first
/// alert where the master gives it) or no new worker answers within
/// `limit`; socket errors when the master cannot be reached at all.
pub async fn reload(
    master: &Socket,
    stats: &Socket,
    limit: Duration,
    caps: Capabilities,
) -> Result<Reloaded> {
    let before = parse_show_proc(&master.send("show proc").await?)?;
    let deadline = Instant::now() + limit;
    if caps.sync_reload {
        let answer = match master.send_within("reload", limit).await {
            Ok(answer) => answer,
            Err(Error::SocketTimedOut { after, .. }) => {
                return Err(Error::ReloadFailed {
                    reason: format!("the master did not answer the reload within {after:?}"),
                });
            }
            Err(e) => return Err(e),
        };
        if let ReloadAnswer::Failed(first) = parse_reload_answer(&answer)? {
            return Err(Error::ReloadFailed {
                reason: format!(
                    "HAProxy could not load the new config ({}); the old worker keeps serving",
                    first
                        .as_deref()
                        .unwrap_or("no alert in the master's answer")
                ),
            });
        }
    } else {
        // The master answers nothing and re-executes itself.
        master.send("reload").await?;
    }
    let poll = Duration::from_millis(20);
    let after = loop {
        if Instant::now() >= deadline {
            return Err(Error::ReloadFailed {
                reason: format!("the master showed no reload within {limit:?}"),
            });
        }
        // While the master re-executes its socket may refuse or hang up.
        if let Ok(text) = master.send("show proc").await
            && let Ok(now) = parse_show_proc(&text)
            && now.reloads > before.reloads
        {
            break now;
        }
        tokio::time::sleep(poll).await;
    };
    if after.failed > before.failed {
        return Err(Error::ReloadFailed {
            reason: format!(
                "HAProxy could not load the new config (master: {} failed reloads); the old worker keeps serving, see HAProxy's log",
                after.failed
            ),
        });
    }
    let worker = after
        .current_worker()
        .filter(|pid| !before.workers.iter().any(|(old, _)| old == pid))
        .ok_or_else(|| Error::ReloadFailed {
            reason: format!("no new worker after the reload: {:?}", after.workers),
        })?;
    loop {
        if let Ok(info) = stats.send("show info").await
            && worker_pid(&info) == Some(worker)
        {
            return Ok(Reloaded {
                worker_pid: worker,
                reloads: after.reloads,
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::ReloadFailed {
                reason: format!("the new worker {worker} did not answer within {limit:?}"),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from HAProxy 2.6.12 after a failed reload.
    const PROC: &str =
        "#<PID>          <type>          <reloads>       <uptime>        <version>      
27193           master          3 [failed: 1]   0d00h00m31s     2.6.12-1+deb12u4
# workers
27687           worker          1               0d00h00m08s     2.6.12-1+deb12u4
27690           worker          0               0d00h00m01s     2.6.12-1+deb12u4
# programs

";

    #[test]
    fn show_proc_is_read() {
        let p = parse_show_proc(PROC).unwrap();
        assert_eq!((p.master_pid, p.reloads, p.failed), (27193, 3, 1));
        assert_eq!(p.workers, vec![(27687, 1), (27690, 0)]);
        assert_eq!(p.current_worker(), Some(27690));
        assert!(parse_show_proc("Unknown command.\n").is_err());
    }

    #[test]
    fn reload_answers_of_every_version_are_read() {
        let answer = |text: &str| {
            let (_, rest) = text.split_once("=== master: reload\n").unwrap();
            let (ok, rest) = rest
                .split_once("=== master: reload (bad config)\n")
                .unwrap();
            let (bad, _) = rest.split_once("=== ").unwrap();
            (ok.to_string(), bad.to_string())
        };
        let (ok, bad) = answer(include_str!("testdata/replies-2.6.txt"));
        assert_eq!(
            (ok.trim(), bad.trim()),
            ("(nothing)", "(nothing)"),
            "2.6 answers nothing"
        );
        for text in [
            include_str!("testdata/replies-3.0.txt"),
            include_str!("testdata/replies-3.2.txt"),
            include_str!("testdata/replies-3.4.txt"),
        ] {
            let (ok, bad) = answer(text);
            assert_eq!(parse_reload_answer(&ok).unwrap(), ReloadAnswer::Loaded);
            let ReloadAnswer::Failed(Some(first)) = parse_reload_answer(&bad).unwrap() else {
                panic!("{bad}");
            };
            assert!(first.starts_with("config : [/run/hnc/h.cfg:"), "{first}");
            assert!(
                first.ends_with("'server bad/x' : unknown keyword 'bogus-keyword'."),
                "{first}"
            );
        }
        assert!(parse_reload_answer("Unknown command.\n").is_err());
        assert_eq!(
            parse_reload_answer("Success=0\n--\n[ALERT]    (1) : a\u{1b}[2Jb\n").unwrap(),
            ReloadAnswer::Failed(Some("a[2Jb".into()))
        );
    }

    #[test]
    fn show_proc_after_a_failed_reload_on_every_version() {
        for text in [
            include_str!("testdata/replies-2.6.txt"),
            include_str!("testdata/replies-3.0.txt"),
            include_str!("testdata/replies-3.2.txt"),
            include_str!("testdata/replies-3.4.txt"),
        ] {
            let (_, proc) = text.split_once("=== master: show proc\n").unwrap();
            let p = parse_show_proc(proc).unwrap();
            assert_eq!((p.reloads, p.failed), (2, 1), "{proc}");
            // 3.2 and later list the serving worker as an old one after a
            // failed reload: it is never taken for a new worker.
            assert!(p.workers.iter().all(|(_, reloads)| *reloads == 1), "{proc}");
        }
    }

    #[test]
    fn gate_coalesces_a_burst_into_one_reload() {
        let t0 = Instant::now();
        let mut gate = ReloadGate::new(Duration::from_secs(2));
        assert_eq!(gate.poll(t0), Gate::Now, "the first reload does not wait");
        gate.close();
        assert_eq!(gate.poll(t0), Gate::Wait(Duration::from_secs(2)));
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(gate.poll(t1), Gate::Wait(Duration::from_millis(500)));
        assert_eq!(gate.poll(t0 + Duration::from_secs(2)), Gate::Now);
        gate.close();
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(
            gate.poll(t3),
            Gate::Wait(Duration::from_secs(2)),
            "a new window"
        );
        let mut now = ReloadGate::new(Duration::ZERO);
        assert_eq!(now.poll(t0), Gate::Now);
    }
}
