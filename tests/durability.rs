//! Durable writes on a full disk: the connector's files live on a small
//! tmpfs made for the test (root and `mount` needed, as in CI), which is
//! filled while Nomad changes. Every old file must stay whole, the failure
//! must show in the log, the metrics and `/readyz`, and once space returns
//! the connector must converge without any further change in Nomad.

use hnc_tests::backends::TcpBackend;
use hnc_tests::haproxy::{Layout, wait_until};
use hnc_tests::logs::Logs;
use hnc_tests::world::{World, job, metric, metrics, readyz};
use nomad_sim::SimConfig;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
const WAIT: Duration = Duration::from_secs(30);
const FULL: &str = "No space left on device";

/// A tmpfs mounted for one test; unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let parent = tempfile::tempdir().expect("temp dir");
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root with mount permission \
             (as in CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            _parent: parent,
            path,
        }
    }

    /// Fills the file system to the last byte; returns the filler file.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                break;
            }
        }
        // Whatever is left below one block, too.
        while f.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Every file of `dir` but `except`, with its bytes.
fn files(dir: &Path, except: &str) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != except))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read file"))
        })
        .collect()
}

/// The log lines of this test (a subscriber for its thread).
/// The disk fills while 20 services are registered (one reload, whose
/// render is larger than any block) and one more instance of a known
/// service is placed (a runtime change, written after it is applied).
///
/// Checks, while full: every file the connector owns keeps its exact old
/// bytes and no temporary file is left; HAProxy was not reloaded and its
/// config still passes `haproxy -c`; the runtime change is applied anyway;
/// an ERROR names the file and the cause; `hnc_file_write_errors_total`
/// counts it; `/readyz` answers 503 naming file and cause; nothing is
/// counted as a rejected render. Once space returns, with no change in
/// Nomad: HAProxy converges, the managed file holds all 21 backends,
/// `/readyz` is 200, and still no rejection was counted.
///
/// One thread, so that the test's log subscriber sees the daemon's events.
#[tokio::test(flavor = "current_thread")]
async fn a_full_disk_keeps_every_old_file_reports_it_and_converges_once_space_returns() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let disk = Tmpfs::mount("2m");
    let layout = Layout {
        files: Some(disk.path.clone()),
        ..Layout::default()
    };
    let mut w = World::start_with(SimConfig::default(), layout).await;
    w.sim.register_job(job("web", "web", &[ON], None));
    let mut up = vec![TcpBackend::start().await];
    w.place("web", "g", &[("http", up[0].port)]);
    let (config, admin) = w.config_with_admin();
    w.start_daemon_with(config);
    w.wait_converged("the initial world", WAIT, Instant::now())
        .await;
    wait_until("ready", WAIT, || async move {
        readyz(admin).await.0.then_some(())
    })
    .await;
    // Let the first writes settle (the runtime changes are written within 500 ms).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = files(&disk.path, "filler");
    let reloads = w.haproxy.reloads().await;

    let filler = disk.fill();
    for i in 0..20 {
        let id = format!("svc{i:02}-with-a-long-name-so-that-the-render-is-large");
        w.sim.register_job(job(&id, &id, &[ON], None));
        up.push(TcpBackend::start().await);
        w.place(&id, "g", &[("http", up[up.len() - 1].port)]);
    }
    up.push(TcpBackend::start().await);
    w.place("web", "g", &[("http", up[up.len() - 1].port)]);

    let reason = wait_until("/readyz to report the full disk", WAIT, || async move {
        let (ready, text) = readyz(admin).await;
        (!ready && text.contains(FULL)).then_some(text)
    })
    .await;
    assert!(
        reason.contains(&disk.path.display().to_string()),
        "/readyz names the file: {reason}"
    );
    let haproxy = &w.haproxy;
    wait_until("the new web instance, applied at runtime", WAIT, || async {
        (haproxy.statuses("default_web").await.len() == 2).then_some(())
    })
    .await;
    let text = metrics(admin).await;
    let failed = metric(&text, "hnc_file_write_errors_total", &[]);
    assert!(failed >= 1.0, "write errors counted: {failed}\n{text}");
    assert_eq!(
        metric(&text, "hnc_reloads_total", &[("reason", "rejected")]),
        0.0
    );
    let log = logs.text();
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("file=") && l.contains(FULL))
        .unwrap_or_else(|| panic!("no ERROR naming file and cause in:\n{log}"));
    assert!(line.contains(&disk.path.display().to_string()), "{line}");

    assert_eq!(
        files(&disk.path, "filler"),
        before,
        "every old file is kept whole"
    );
    assert_eq!(w.haproxy.reloads().await, reloads, "no reload while full");
    let (valid, said) = w.haproxy.check_config();
    assert!(valid, "HAProxy's config still loads: {said}");

    // Space returns; nothing changes in Nomad.
    std::fs::remove_file(&filler).expect("remove the filler");
    let back = Instant::now();
    w.wait_converged("convergence once space returns", WAIT, back)
        .await;
    wait_until("ready again", WAIT, || async move {
        readyz(admin).await.0.then_some(())
    })
    .await;
    let managed = std::fs::read_to_string(&w.haproxy.managed_cfg).expect("managed file");
    assert_eq!(managed.matches("\nbackend ").count(), 21, "{managed}");
    let (valid, said) = w.haproxy.check_config();
    assert!(valid, "{said}");
    let text = metrics(admin).await;
    assert_eq!(
        metric(&text, "hnc_reloads_total", &[("reason", "rejected")]),
        0.0
    );
    assert_eq!(metric(&text, "hnc_files_unwritten", &[]), 0.0);
    let leftovers: Vec<String> = files(&disk.path, "filler")
        .into_keys()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    w.stop_daemon().await;
}
