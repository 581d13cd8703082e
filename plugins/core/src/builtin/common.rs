//! What every built-in mapping shares: settings parsing and Nomad's timing semantics.

use crate::model::{CheckPlan, NomadCheck, ServerCheck, Settings};

/// Settings that every built-in accepts.
pub const TIMING_KEYS: &[&str] = &["rise", "fall"];

/// A plugin's settings, checked against the keys it knows.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a>(&'a Settings);

impl<'a> Options<'a> {
    /// The value of `key`; the last one wins when a key repeats.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks settings against the keys a plugin knows.
///
/// # Errors
/// Names the first key that is not in `known`: a typo in the config must not
/// be silently ignored.
pub fn checked_settings<'a>(settings: &'a Settings, known: &[&str]) -> Result<Options<'a>, String> {
    if let Some((key, _)) = settings
        .iter()
        .find(|(k, _)| !known.contains(&k.as_str()) && !TIMING_KEYS.contains(&k.as_str()))
    {
        let mut all: Vec<&str> = known.iter().chain(TIMING_KEYS).copied().collect();
        all.sort_unstable();
        return Err(format!(
            "unknown setting '{key}' (known: {})",
            all.join(", ")
        ));
    }
    Ok(Options(settings))
}

/// Parses a positive count setting such as `rise`.
fn count(value: Option<&str>, key: &str) -> Result<Option<u32>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "setting '{key}' must be a number from 1 to 1000, got '{v}'"
            )),
        },
    }
}

/// Milliseconds as HAProxy's u32 timers take them, saturating.
pub fn millis(ms: u64) -> u32 {
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// The check timing shared by all built-ins.
///
/// Nomad's own checker flips state on a single result (no thresholds for
/// `provider = "nomad"`), so rise and fall default to 1; Consul's
/// `success_before_passing` / `failures_before_critical` map onto them, and
/// the `rise` / `fall` settings override both.
///
/// # Errors
/// A `rise` or `fall` setting that is not a count.
pub fn timed_plan(check: &NomadCheck, options: &Options) -> Result<CheckPlan, String> {
    let rise = count(options.get("rise"), "rise")?.unwrap_or(check.success_before_passing.max(1));
    let fall = count(options.get("fall"), "fall")?.unwrap_or(check.failures_before_critical.max(1));
    let interval = (check.interval_ms > 0).then(|| millis(check.interval_ms));
    let timeout = (check.timeout_ms > 0).then(|| millis(check.timeout_ms));
    Ok(CheckPlan {
        timeout_check_ms: timeout,
        server: ServerCheck {
            enabled: true,
            inter_ms: interval,
            rise: Some(rise),
            fall: Some(fall),
            port: check.check_port,
            ..ServerCheck::default()
        },
        ..CheckPlan::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_setting_is_named() {
        let s = settings(&[("rize", "2")]);
        let err = checked_settings(&s, &["authority"]).err().unwrap();
        assert!(err.contains("'rize'"), "{err}");
        assert!(err.contains("authority, fall, rise"), "{err}");
    }

    #[test]
    fn nomad_semantics_are_single_result_by_default() {
        let s = settings(&[]);
        let get = checked_settings(&s, &[]).unwrap();
        let check = NomadCheck {
            interval_ms: 10_000,
            timeout_ms: 2_000,
            ..NomadCheck::default()
        };
        let plan = timed_plan(&check, &get).unwrap();
        assert_eq!(plan.server.rise, Some(1));
        assert_eq!(plan.server.fall, Some(1));
        assert_eq!(plan.server.inter_ms, Some(10_000));
        assert_eq!(plan.timeout_check_ms, Some(2_000));
    }

    #[test]
    fn settings_override_consul_thresholds() {
        let s = settings(&[("fall", "3")]);
        let get = checked_settings(&s, &[]).unwrap();
        let check = NomadCheck {
            success_before_passing: 2,
            failures_before_critical: 5,
            ..NomadCheck::default()
        };
        let plan = timed_plan(&check, &get).unwrap();
        assert_eq!((plan.server.rise, plan.server.fall), (Some(2), Some(3)));
    }

    #[test]
    fn bad_count_is_refused() {
        let s = settings(&[("rise", "0")]);
        let get = checked_settings(&s, &[]).unwrap();
        let err = timed_plan(&NomadCheck::default(), &get).unwrap_err();
        assert!(err.contains("'rise'"), "{err}");
    }
}
