//! The benchmarks' view of a child process.

/// The resident set size of process `pid` in MB (`VmRSS`), 0 if unreadable.
pub fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// A `/proc/PID/status` field in MB (`VmRSS:`, `RssAnon:`, `RssFile:`...), 0 if unreadable.
pub fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A command that runs the connector `binary`, under the profiler named by
/// `BENCH_WRAP` if set (e.g. `BENCH_WRAP=heaptrack`).
pub fn connector_command(binary: &std::path::Path) -> std::process::Command {
    match std::env::var("BENCH_WRAP") {
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = std::process::Command::new(words.next().unwrap_or_default());
            c.args(words).arg(binary);
            c
        }
        _ => std::process::Command::new(binary),
    }
}

/// Stops the connector: SIGTERM, or SIGKILL with `BENCH_KILL` set, so that a
/// heap profiler reports what the daemon held at the end as leaked.
pub fn stop_connector(child: &mut std::process::Child) {
    let signal = match std::env::var_os("BENCH_KILL") {
        Some(_) => "-KILL",
        None => "-TERM",
    };
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let _ = child.wait();
}
