//! HAProxy's timer limit: check timings above it are clamped, so that no
//! value from Nomad, a tag or a plugin can make `haproxy -c` refuse a
//! backend (a Nomad interval of 2^63-1 ns once rendered `inter 4294967295ms`).

use hnc_core::model::CheckPlan;

/// The longest timer HAProxy accepts, 2^31-1 ms (~24.8 days); above it the
/// config is refused with "timer overflow".
pub const MAX_TIMER_MS: u32 = i32::MAX.unsigned_abs();

/// Clamps every timer of `plan` to [`MAX_TIMER_MS`] and returns the names
/// of the settings it changed (HAProxy's keywords), for a warning.
pub fn clamp(plan: &mut CheckPlan) -> Vec<&'static str> {
    let mut clamped = Vec::new();
    let server = &mut plan.server;
    let agent_inter = server.agent.as_mut().map(|a| &mut a.inter_ms);
    let timers = [
        ("timeout check", Some(&mut plan.timeout_check_ms)),
        ("inter", Some(&mut server.inter_ms)),
        ("fastinter", Some(&mut server.fastinter_ms)),
        ("downinter", Some(&mut server.downinter_ms)),
        ("agent-inter", agent_inter),
    ];
    for (name, timer) in timers {
        if let Some(Some(ms)) = timer
            && *ms > MAX_TIMER_MS
        {
            *ms = MAX_TIMER_MS;
            clamped.push(name);
        }
    }
    clamped
}

#[cfg(test)]
mod tests {
    use super::*;
    use hnc_core::model::AgentCheck;

    #[test]
    fn timers_above_the_limit_are_clamped_and_named() {
        let mut plan = CheckPlan::tcp_fallback();
        plan.timeout_check_ms = Some(u32::MAX);
        plan.server.inter_ms = Some(u32::MAX);
        plan.server.fastinter_ms = Some(MAX_TIMER_MS);
        plan.server.downinter_ms = Some(1_000);
        plan.server.agent = Some(AgentCheck {
            inter_ms: Some(MAX_TIMER_MS + 1),
            ..AgentCheck::default()
        });
        assert_eq!(clamp(&mut plan), ["timeout check", "inter", "agent-inter"]);
        assert_eq!(plan.timeout_check_ms, Some(MAX_TIMER_MS));
        assert_eq!(plan.server.inter_ms, Some(MAX_TIMER_MS));
        assert_eq!(plan.server.fastinter_ms, Some(MAX_TIMER_MS));
        assert_eq!(plan.server.downinter_ms, Some(1_000));
        assert_eq!(plan.server.agent.unwrap().inter_ms, Some(MAX_TIMER_MS));
        assert!(clamp(&mut CheckPlan::tcp_fallback()).is_empty());
    }
}
