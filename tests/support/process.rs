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
