//! Random identifiers (UUIDs as Nomad prints them), jitter and shuffling, without an RNG crate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fresh pseudo-random 64-bit value (SipHash keyed by std's per-process random keys).
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(now_nanos());
    h.finish()
}

/// A random UUID in Nomad's 8-4-4-4-12 lowercase hex form.
pub(crate) fn uuid() -> String {
    let a = random_u64();
    let b = random_u64();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A uniformly random duration in `[0, max)`; zero when `max` is zero.
pub(crate) fn jitter(max: Duration) -> Duration {
    let n = max.as_nanos();
    if n == 0 {
        return Duration::ZERO;
    }
    let r = u128::from(random_u64()) % n;
    Duration::from_nanos(u64::try_from(r).unwrap_or(u64::MAX))
}

/// Shuffles in place (Fisher-Yates), like Go's randomised map iteration order.
pub(crate) fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = usize::try_from(random_u64() % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch as Nomad's int64 timestamps.
pub(crate) fn now_nanos_i64() -> i64 {
    i64::try_from(now_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        let parts: Vec<_> = u.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_ne!(uuid(), uuid());
    }

    #[test]
    fn jitter_bounds() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(10)) < Duration::from_millis(10));
        }
    }
}
