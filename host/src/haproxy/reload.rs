//! Reloads: the coalescing gate, `show proc`, and a reload confirmed through the master socket.

use super::error::{Error, Result};
use super::runtime::Socket;
use super::version::worker_pid;
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

/// Reloads through the master socket and waits until a new worker answers
/// on the stats socket.
///
/// # Errors
/// [`Error::ReloadFailed`] when the master counts a failed reload (the old
/// worker keeps serving) or no new worker answers within `limit`; socket
/// errors when the master cannot be reached at all.
pub async fn reload(master: &Socket, stats: &Socket, limit: Duration) -> Result<Reloaded> {
    let before = parse_show_proc(&master.send("show proc").await?)?;
    // The master answers nothing and re-executes itself.
    master.send("reload").await?;
    let deadline = Instant::now() + limit;
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
