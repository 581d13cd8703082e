//! A real HAProxy per test: master-worker mode, loopback only, its own temp dir.
//!
//! [`Haproxy::start`] writes an operator config (a stats socket at admin
//! level, a frontend on a free port that routes by the connector's three
//! domain maps first, exactly as `docs/haproxy-driver.md` tells operators,
//! then by the `x-backend` request header, plus whatever sections the test
//! adds), an empty managed file and empty maps, and runs
//! `haproxy -W -S <dir>/master.sock -f operator.cfg -f managed.cfg` as its
//! own process group. Dropping the value kills the group.
//!
//! The helpers read HAProxy's own view (`show stat`, `show servers state`,
//! `show proc`) with their own parsers, independent of the connector's.

use haproxy_nomad_connector::haproxy;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A running HAProxy and its files.
pub struct Haproxy {
    /// The temp dir holding every file and socket (removed on drop).
    pub dir: TempDir,
    /// The frontend's port on 127.0.0.1.
    pub port: u16,
    /// The operator's config (given to HAProxy first).
    pub operator_cfg: PathBuf,
    /// The connector's managed file (given second; starts empty).
    pub managed_cfg: PathBuf,
    /// The connector's state file.
    pub state_file: PathBuf,
    /// The Host map.
    pub host_map: PathBuf,
    /// The URI map.
    pub uri_map: PathBuf,
    /// The domain map of exact hosts (`map_str` in the frontend).
    pub domain_map_exact: PathBuf,
    /// The domain map of host prefixes (`map_beg`).
    pub domain_map_prefix: PathBuf,
    /// The domain map of host regexes (`map_reg`).
    pub domain_map_regex: PathBuf,
    /// The stats socket (admin level).
    pub stats_socket: PathBuf,
    /// The master socket.
    pub master_socket: PathBuf,
    /// The user who may use the sockets besides root ([`Layout::socket_user`]).
    socket_user: Option<String>,
    child: Option<Child>,
}

/// Where a test HAProxy expects the connector's files, and who may use its sockets.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// The directory of the managed file, the state files and the maps
    /// (default: HAProxy's temp dir, beside its config and sockets).
    pub files: Option<PathBuf>,
    /// A user (besides root) who owns the stats and master sockets, mode
    /// 660: a connector that runs as that user can drive HAProxy.
    pub socket_user: Option<String>,
}

/// One row of `show stat`, by column name (`pxname`, `svname`, `status`,
/// `weight`, `check_status`, `addr`, …).
pub type StatRow = BTreeMap<String, String>;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The servers of a backend as HAProxy reports them: name → (status, check
/// status without its `* ` prefix).
pub async fn servers(haproxy: &Haproxy, backend: &str) -> BTreeMap<String, (String, String)> {
    haproxy
        .stat()
        .await
        .into_iter()
        .filter(|r| r["pxname"] == backend)
        .map(|r| {
            let check = r["check_status"].trim_start_matches("* ").to_string();
            (r["svname"].clone(), (r["status"].clone(), check))
        })
        .collect()
}

/// Waits (30 s at most) until `backend` has `count` servers, all UP, and
/// returns them as [`servers`] does.
pub async fn all_up(
    haproxy: &Haproxy,
    backend: &str,
    count: usize,
) -> BTreeMap<String, (String, String)> {
    wait_until(
        &format!("{count} UP servers in {backend}"),
        Duration::from_secs(30),
        || async {
            let s = servers(haproxy, backend).await;
            (s.len() == count && s.values().all(|(status, _)| status == "UP")).then_some(s)
        },
    )
    .await
}

/// Polls `probe` every 50 ms until it returns `Some`, or panics naming
/// `what` after `timeout`. Never use it to assert a duration.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Haproxy {
    /// Starts HAProxy with the base operator config plus `extra` (sections
    /// appended verbatim, e.g. an operator backend), and waits until its
    /// stats socket answers.
    pub async fn start(extra: &str) -> Haproxy {
        Haproxy::start_with(Layout::default(), extra).await
    }

    /// [`Haproxy::start`] with the connector's files and the sockets'
    /// owner as `layout` says.
    pub async fn start_with(layout: Layout, extra: &str) -> Haproxy {
        let dir = tempfile::Builder::new()
            .prefix("hnc-haproxy-")
            .tempdir()
            .expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        let files = layout.files.unwrap_or_else(|| dir.path().to_path_buf());
        let file = |name: &str| files.join(name);
        let port = free_port();
        let mut haproxy = Haproxy {
            port,
            operator_cfg: path("operator.cfg"),
            managed_cfg: file("managed.cfg"),
            state_file: file("servers.state"),
            host_map: file("hosts.map"),
            uri_map: file("uris.map"),
            domain_map_exact: file("domains.map"),
            domain_map_prefix: file("domains-prefix.map"),
            domain_map_regex: file("domains-regex.map"),
            stats_socket: path("admin.sock"),
            master_socket: path("master.sock"),
            socket_user: layout.socket_user,
            child: None,
            dir,
        };
        let config = format!("{}{extra}", base_config(&haproxy, port));
        std::fs::write(&haproxy.operator_cfg, config).expect("write operator.cfg");
        std::fs::write(&haproxy.managed_cfg, "").expect("write managed.cfg");
        for map in [
            &haproxy.host_map,
            &haproxy.uri_map,
            &haproxy.domain_map_exact,
            &haproxy.domain_map_prefix,
            &haproxy.domain_map_regex,
        ] {
            std::fs::write(map, "").expect("write an empty map");
        }
        haproxy.spawn().await;
        haproxy
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("haproxy.log"))
            .expect("open haproxy.log");
        let child = {
            use std::os::unix::process::CommandExt;
            let mut master = self.master_socket.clone().into_os_string();
            if let Some(user) = &self.socket_user {
                master.push(format!(",user,{user},mode,660"));
            }
            Command::new("haproxy")
                .arg("-W")
                .arg("-S")
                .arg(master)
                .arg("-f")
                .arg(&self.operator_cfg)
                .arg("-f")
                .arg(&self.managed_cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("haproxy is installed (tests/install-deps.sh)")
        };
        self.child = Some(child);
        let (stats, master) = (self.stats_socket.clone(), self.master_socket.clone());
        wait_until(
            "HAProxy's stats and master sockets",
            Duration::from_secs(15),
            || {
                let (stats, master) = (stats.clone(), master.clone());
                async move {
                    send(&stats, "show info")
                        .await
                        .ok()
                        .filter(|i| i.contains("Pid:"))?;
                    send(&master, "show proc")
                        .await
                        .ok()
                        .filter(|p| p.contains(" master "))
                }
            },
        )
        .await;
    }

    /// A driver config for this HAProxy: no reload window, a 60 s drain,
    /// the Host, URI and domain maps set.
    pub fn driver_config(&self) -> haproxy::Config {
        haproxy::Config {
            stats_socket: self.stats_socket.clone(),
            master_socket: self.master_socket.clone(),
            managed_config: self.managed_cfg.clone(),
            state_file: self.state_file.clone(),
            host_map: Some(self.host_map.clone()),
            uri_map: Some(self.uri_map.clone()),
            domain_map_exact: Some(self.domain_map_exact.clone()),
            domain_map_prefix: Some(self.domain_map_prefix.clone()),
            domain_map_regex: Some(self.domain_map_regex.clone()),
            operator_configs: vec![self.operator_cfg.clone()],
            haproxy_bin: "haproxy".into(),
            drain_grace_ms: 60_000,
            reload_delay_ms: 0,
            socket_timeout_ms: 10_000,
            reload_timeout_ms: 30_000,
        }
    }

    /// Sends one command to the stats socket.
    pub async fn cmd(&self, command: &str) -> String {
        send(&self.stats_socket, command)
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}\n{}", self.log()))
    }

    /// The entries of a map as HAProxy holds them (`show map`), as
    /// `(key, value)` in HAProxy's order.
    pub async fn map_entries(&self, map: &Path) -> Vec<(String, String)> {
        let text = self.cmd(&format!("show map {}", map.display())).await;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert!(f.len() == 3 && f[0].starts_with("0x"), "show map: {l:?}");
                (f[1].to_string(), f[2].to_string())
            })
            .collect()
    }

    /// Sends `GET /` with this `Host` header and no `x-backend` to the
    /// frontend, so that only the domain maps can pick a backend; returns
    /// the status code (503 when no map entry matches).
    pub async fn get_host(&self, host: &str) -> Result<u16, String> {
        let request = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        crate::load::exchange(("127.0.0.1", self.port), &request)
            .await
            .map(|(code, _)| code)
    }

    /// A connector config (TOML) for this HAProxy: `[nomad]` holding the
    /// `nomad` keys, then `[haproxy]` with every socket, file and map of this
    /// HAProxy, then `extra` (more `[haproxy]` keys first, then other tables).
    pub fn connector_toml(&self, nomad: &str, extra: &str) -> String {
        format!(
            r#"[nomad]
{nomad}

[haproxy]
stats_socket = "{stats}"
master_socket = "{master}"
managed_config = "{managed}"
state_file = "{state}"
host_map = "{hosts}"
uri_map = "{uris}"
domain_map_exact = "{exact}"
domain_map_prefix = "{prefix}"
domain_map_regex = "{regex}"
operator_configs = ["{operator}"]
{extra}"#,
            stats = self.stats_socket.display(),
            master = self.master_socket.display(),
            managed = self.managed_cfg.display(),
            state = self.state_file.display(),
            hosts = self.host_map.display(),
            uris = self.uri_map.display(),
            exact = self.domain_map_exact.display(),
            prefix = self.domain_map_prefix.display(),
            regex = self.domain_map_regex.display(),
            operator = self.operator_cfg.display(),
        )
    }

    /// `show stat` rows of servers (not FRONTEND/BACKEND lines).
    pub async fn stat(&self) -> Vec<StatRow> {
        table(&self.cmd("show stat").await, csv_fields)
            .into_iter()
            .filter(|r| !matches!(r["svname"].as_str(), "FRONTEND" | "BACKEND"))
            .collect()
    }

    /// The `show stat` row of one server, if it exists.
    pub async fn server(&self, backend: &str, server: &str) -> Option<StatRow> {
        self.stat()
            .await
            .into_iter()
            .find(|r| r["pxname"] == backend && r["svname"] == server)
    }

    /// The servers of a backend by name, with their `show stat` status.
    pub async fn statuses(&self, backend: &str) -> BTreeMap<String, String> {
        self.stat()
            .await
            .into_iter()
            .filter(|r| r["pxname"] == backend)
            .map(|r| (r["svname"].clone(), r["status"].clone()))
            .collect()
    }

    /// `show servers state` rows of a backend, by column name.
    pub async fn servers_state(&self, backend: &str) -> Vec<StatRow> {
        let text = self.cmd(&format!("show servers state {backend}")).await;
        // The first line is the format version; the header follows.
        let text = text.split_once('\n').map_or("", |(_, rest)| rest);
        table(text, |l| l.split(' ').map(String::from).collect())
    }

    /// The names of the backends HAProxy runs (`show backend`).
    pub async fn backends(&self) -> Vec<String> {
        self.cmd("show backend")
            .await
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    /// The master's reload count and failed-reload count (`show proc`).
    pub async fn reloads(&self) -> (u32, u32) {
        // The master re-executes itself on a reload: its socket refuses
        // connections for a moment after the new worker already runs.
        let mut tries = 0;
        let text = loop {
            match send(&self.master_socket, "show proc").await {
                Ok(text) => break text,
                Err(e) if tries < 40 => {
                    tries += 1;
                    tracing::debug!("show proc: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("show proc: {e}\n{}", self.log()),
            }
        };
        let line = text
            .lines()
            .find(|l| l.contains(" master "))
            .unwrap_or_else(|| panic!("no master line in {text:?}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |s: &str| s.trim_end_matches(']').parse::<u32>().expect("a number");
        (n(f[2]), n(f[4]))
    }

    /// HAProxy's own output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// Kills the master and its workers (SIGKILL to the process group).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills HAProxy and starts it again from the same files and ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Runs `haproxy -c` on the operator config plus the managed file, as
    /// HAProxy loads them; returns whether it passes, and its output.
    pub fn check_config(&self) -> (bool, String) {
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&self.operator_cfg)
            .arg("-f")
            .arg(&self.managed_cfg)
            .output()
            .expect("haproxy -c");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The base operator config: the frontend picks a backend by the domain
/// maps (the rules `docs/haproxy-driver.md` gives operators), else by the
/// `x-backend` header.
fn base_config(h: &Haproxy, port: u16) -> String {
    let host = "req.hdr(host),lower,word(1,:)";
    let rule = |converter: &str, map: &Path| {
        let lookup = format!("{host},{converter}({})", map.display());
        format!("    use_backend %[{lookup}] if {{ {lookup} -m found }}\n")
    };
    let owner = h
        .socket_user
        .as_ref()
        .map_or("mode 600".to_string(), |u| format!("user {u} mode 660"));
    format!(
        "global
    stats socket {stats} {owner} level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s

frontend fe
    bind 127.0.0.1:{port}
{exact}{prefix}{regex}    use_backend %[req.hdr(x-backend)]
",
        stats = h.stats_socket.display(),
        exact = rule("map_str", &h.domain_map_exact),
        prefix = rule("map_beg", &h.domain_map_prefix),
        regex = rule("map_reg", &h.domain_map_regex),
    )
}

/// One command on a UNIX socket; returns the whole answer.
pub async fn send(socket: &Path, command: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        // The master socket answers only once it sees the end of input.
        stream.shutdown().await?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await?;
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "socket timed out"))?
}

/// Rows of a `# `-headed table, by column name, split by `fields`.
fn table(text: &str, fields: impl Fn(&str) -> Vec<String>) -> Vec<StatRow> {
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap_or_default().trim_start_matches("# "));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| header.iter().cloned().zip(fields(l)).collect())
        .collect()
}

/// The fields of one line of HAProxy's CSV: a field with a comma (a check
/// comment, say) comes in double quotes, with `""` for a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field at least");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => field.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_quoted_commas() {
        assert_eq!(
            csv_fields(r#"be,s1,"did not match, at step 4","say ""hi""",,UP"#),
            [
                "be",
                "s1",
                "did not match, at step 4",
                r#"say "hi""#,
                "",
                "UP"
            ]
        );
    }

    #[test]
    fn table_rows_are_keyed_by_the_header() {
        let rows = table("# pxname svname\nbe s1\n\nbe s2\n", |l| {
            l.split(' ').map(String::from).collect()
        });
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["svname"], "s2");
    }
}
