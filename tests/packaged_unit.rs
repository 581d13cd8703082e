//! The packaged systemd unit works as shipped (examples/packaging): every
//! file its config makes the connector write lies in a directory the unit
//! makes writable, and the daemon syncs a real HAProxy from the simulator
//! under the unit's restrictions.
//!
//! systemd itself is not available to the tests, so they enforce what the
//! unit sets that can stop a write: its `User=`/`Group=` (`setpriv`, no
//! new privileges, no capabilities) and `ProtectSystem=strict` with its
//! `ReadWritePaths=`, `StateDirectory=` and `CacheDirectory=` (a private
//! mount namespace in which `/` is read-only except the stand-ins of those
//! directories, bind-mounted writable). `PrivateTmp=` and `ProtectHome=`
//! only hide paths the connector never uses. Needs root (as in CI).

use crate::connector_process::Connector;
use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::daemon::Lock;
use hnc_tests::backends::TcpBackend;
use hnc_tests::haproxy::{Haproxy, Layout};
use hnc_tests::world::{job, metric, metrics, readyz};
use nomad_sim::{Sim, SimConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/packaging")
}

/// The `[Service]` settings of the packaged unit, by key (a key given
/// several times keeps every value).
fn unit() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(packaging().join("haproxy-nomad-connector.service"))
        .expect("the packaged unit");
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((key, value)) = line.split_once('=') {
            keys.entry(key.trim().into())
                .or_default()
                .push(value.trim().into());
        }
    }
    keys
}

/// One value of a unit key.
fn one<'a>(unit: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match unit.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key}= once in the unit, found {other:?}"),
    }
}

/// Every directory the unit lets the connector write: `ReadWritePaths=`,
/// `StateDirectory=` (under /var/lib) and `CacheDirectory=` (under /var/cache).
fn writable(unit: &BTreeMap<String, Vec<String>>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = unit
        .get("ReadWritePaths")
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace())
        .map(PathBuf::from)
        .collect();
    dirs.push(Path::new("/var/lib").join(one(unit, "StateDirectory")));
    dirs.push(Path::new("/var/cache").join(one(unit, "CacheDirectory")));
    dirs
}

#[test]
fn every_file_the_packaged_config_writes_lies_in_a_directory_the_unit_makes_writable() {
    let unit = unit();
    assert_eq!(one(&unit, "ProtectSystem"), "strict");
    assert_eq!(one(&unit, "User"), "haproxy");
    let dirs = writable(&unit);
    for dir in &dirs {
        assert!(dir.is_absolute(), "{dir:?}");
    }
    let config = Config::load(&packaging().join("connector.toml")).expect("the packaged config");
    let h = &config.haproxy;
    let mut files = vec![
        h.managed_config.clone(),
        Lock::path_for(&h.managed_config),
        h.state_file.clone(),
    ];
    files.extend([&h.host_map, &h.uri_map].into_iter().flatten().cloned());
    files.extend(
        [
            &h.domain_map_exact,
            &h.domain_map_prefix,
            &h.domain_map_regex,
        ]
        .into_iter()
        .flatten()
        .cloned(),
    );
    assert_eq!(files.len(), 8, "every map is configured: {files:?}");
    for file in &files {
        // A file is replaced through a temporary sibling: its directory,
        // not the file, must be writable.
        let dir = file.parent().expect("a directory");
        assert!(
            dirs.iter().any(|d| d == dir),
            "{} is not writable",
            dir.display()
        );
    }
    let cache = config.mapping.cache_dir.expect("a plugin cache");
    assert!(dirs.contains(&cache), "{}", cache.display());

    // The tmpfiles.d entries create, owned by the unit's user, the state
    // directory and every file HAProxy loads before the connector starts.
    let tmpfiles = std::fs::read_to_string(packaging().join("haproxy-nomad-connector.tmpfiles"))
        .expect("the packaged tmpfiles.d entries");
    let entries: Vec<Vec<&str>> = tmpfiles
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    let state_dir = Path::new("/var/lib").join(one(&unit, "StateDirectory"));
    let created = |kind: &str, path: &Path| {
        entries
            .iter()
            .any(|e| e[0] == kind && Path::new(e[1]) == path && e[3] == one(&unit, "User"))
    };
    assert!(created("d", &state_dir), "{tmpfiles}");
    let loaded = [&files[0]].into_iter().chain(&files[3..]);
    for file in loaded {
        assert!(
            created("f", file),
            "{} is not created: {tmpfiles}",
            file.display()
        );
    }
}

/// `chown -R user:group path`.
fn chown(owner: &str, path: &Path) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(owner)
        .arg(path)
        .status()
        .expect("chown");
    assert!(ok.success(), "chown {owner} {}", path.display());
}

fn chmod(mode: &str, path: &Path) {
    let ok = Command::new("chmod")
        .arg(mode)
        .arg(path)
        .status()
        .expect("chmod");
    assert!(ok.success(), "chmod {mode} {}", path.display());
}

/// The UID of a running process.
fn uid_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// Waits until HAProxy equals Nomad's truth.
async fn converged(sim: &Sim, haproxy: &Haproxy, what: &str) {
    hnc_tests::haproxy::wait_until(what, WAIT, || async {
        let diff = hnc_tests::convergence::diff(sim, haproxy).await;
        diff.is_empty().then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_syncs_under_the_packaged_units_restrictions() {
    let unit = unit();
    let (user, group) = (one(&unit, "User"), one(&unit, "Group"));
    let owner = format!("{user}:{group}");
    let root = tempfile::tempdir().expect("temp dir");
    chmod("0755", root.path());
    // Stand-ins of StateDirectory= and CacheDirectory=, as systemd makes them.
    let state = root.path().join("state");
    let cache = root.path().join("cache");
    std::fs::create_dir(&state).expect("state dir");
    std::fs::create_dir(&cache).expect("cache dir");
    chmod(one(&unit, "StateDirectoryMode"), &state);
    chmod(one(&unit, "CacheDirectoryMode"), &cache);

    let sim = Sim::start(SimConfig {
        heartbeat: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");
    let layout = Layout {
        files: Some(state.clone()),
        socket_user: Some(user.into()),
    };
    let haproxy = Haproxy::start_with(layout, "").await;
    // The files HAProxy loads, as tmpfiles.d creates them: owned by the user.
    chown(&owner, &state);
    chown(&owner, &cache);
    // HAProxy's own directory (config, sockets) is read-only to the user.
    chmod("0755", haproxy.dir.path());

    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], hnc_tests::haproxy::free_port()));
    let nomad = format!("address = \"{}\"\nnamespaces = [\"*\"]", sim.url());
    let extra = format!(
        "reload_delay_ms = 100\n[mapping]\ncache_dir = \"{}\"\n[daemon]\nadmin_listen = \"{admin}\"\n",
        cache.display()
    );
    let config = root.path().join("connector.toml");
    std::fs::write(&config, haproxy.connector_toml(&nomad, &extra)).expect("config");

    // ReadWritePaths= names the unit's own two directories and nothing
    // else, so their stand-ins are all that stays writable.
    let mut own = writable(&unit);
    own.sort();
    own.dedup();
    assert_eq!(
        own.len(),
        2,
        "ReadWritePaths= beyond the own directories: {own:?}"
    );
    let rw = [state.display().to_string(), cache.display().to_string()];
    let script = format!(
        "set -e\n\
         for d in {dirs}; do mount --bind \"$d\" \"$d\"; done\n\
         mount -o remount,bind,ro /\n\
         exec setpriv --reuid={user} --regid={group} --clear-groups --no-new-privs \
         --inh-caps=-all --bounding-set=-all -- \"$0\" \"$@\"",
        dirs = rw.join(" ")
    );
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
    ];

    let backends = [
        TcpBackend::start().await,
        TcpBackend::start().await,
        TcpBackend::start().await,
    ];
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    sim.register_job(job("web", "web", &[ON], None));
    sim.place_alloc(nomad_sim::PlaceAlloc::new("web", "g").port("http", ports[0]));
    let log = root.path().join("connector.log");
    let mut connector = Connector::spawn(&wrapper, &config, &log);
    converged(
        &sim,
        &haproxy,
        "the first sync under the unit's restrictions",
    )
    .await;
    let uid = Command::new("id").args(["-u", user]).output().expect("id");
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    assert_eq!(uid_of(connector.pid()), uid, "the connector runs as {user}");

    // A change that needs a reload (a new backend: candidate, haproxy -c,
    // state files, rename) and one at runtime (a server, then the files).
    sim.register_job(job("api", "api", &[ON], None));
    sim.place_alloc(nomad_sim::PlaceAlloc::new("api", "g").port("http", ports[1]));
    sim.place_alloc(nomad_sim::PlaceAlloc::new("web", "g").port("http", ports[2]));
    converged(
        &sim,
        &haproxy,
        "a reload and a runtime change under the restrictions",
    )
    .await;
    hnc_tests::haproxy::wait_until("ready", WAIT, || async move {
        readyz(admin).await.0.then_some(())
    })
    .await;
    let text = metrics(admin).await;
    assert_eq!(
        metric(&text, "hnc_file_write_errors_total", &[]),
        0.0,
        "{text}"
    );
    let managed = std::fs::read_to_string(&haproxy.managed_cfg).expect("managed file");
    assert!(managed.contains("\nbackend default_api\n"), "{managed}");
    let lock = Lock::path_for(&haproxy.managed_cfg);
    let holder = std::fs::read_to_string(&lock).expect("the lock file");
    assert_eq!(holder.trim(), connector.pid().to_string());

    assert!(connector.stop("-TERM").success(), "{}", connector.log());
    let said = connector.log();
    assert!(!said.contains("ERROR"), "{said}");
}
