//! The connector's binary as a child process (for the tests that need a
//! real process: its exit status, its PID, another user's privileges).

use hnc_tests::backends::TcpBackend;
use hnc_tests::world::{World, job};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The connector binary built for the tests (`host/src/main.rs`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_connector");

/// `[haproxy]` lines for [`world_with_web`]: quick reloads, and no admin
/// listener (its default port would be shared by the tests that run at once).
pub const QUIET: &str = "reload_delay_ms = 100\n[daemon]\nadmin_listen = \"\"\n";

/// A world with one service, `web`, placed on a listening backend, and a
/// connector config for it in HAProxy's temp dir: the `[haproxy]` lines
/// `haproxy` (and any table after them). Keep the backend while it runs.
pub async fn world_with_web(haproxy: &str) -> (World, TcpBackend, PathBuf) {
    let w = World::start().await;
    w.sim
        .register_job(job("web", "web", &["haproxy.enable=true"], None));
    let web = TcpBackend::start().await;
    w.place("web", "g", &[("http", web.port)]);
    let config = w.haproxy.dir.path().join("connector.toml");
    let nomad = format!("address = \"{}\"\nnamespaces = [\"*\"]", w.sim.url());
    std::fs::write(&config, w.haproxy.connector_toml(&nomad, haproxy)).expect("write the config");
    (w, web, config)
}

/// A running `connector run --config <path>`; killed when dropped.
pub struct Connector {
    child: Child,
    log: PathBuf,
}

impl Connector {
    /// Runs `run --config config`, wrapped by `wrapper` (a command and its
    /// arguments that end with the program to run, e.g. `setpriv … --`),
    /// with stdout and stderr in `log`.
    pub fn spawn(wrapper: &[&str], config: &Path, log: &Path) -> Connector {
        let out = std::fs::File::create(log).expect("connector log");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BINARY);
                c
            }
            None => Command::new(BINARY),
        };
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("start the connector");
        Connector {
            child,
            log: log.into(),
        }
    }

    /// The process ID (of the wrapper, if any: it execs the connector).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it exited within `timeout`; `None` if it still runs.
    pub async fn exited(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`-HUP`, `-TERM`, `-KILL`); whether `kill` did.
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Sends `signal` (`-TERM`, `-KILL`) and waits for the process.
    pub fn stop(&mut self, signal: &str) -> ExitStatus {
        self.signal(signal);
        self.child.wait().expect("wait")
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop("-KILL");
        }
    }
}
