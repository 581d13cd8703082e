//! One shared copy of equal values: the instances of a service usually
//! carry equal job-spec checks and map to equal server check arguments;
//! 10,000 copies of either weighed megabytes.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Equal values share one `Arc`; values nobody else holds are dropped once
/// the set has doubled since the last sweep.
#[derive(Debug)]
pub(super) struct Interner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    sweep_at: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: HashSet::new(),
            sweep_at: 1024,
        }
    }
}

impl<T: Eq + Hash + ?Sized> Interner<T> {
    /// The shared copy equal to `value` (`value` itself the first time).
    pub(super) fn intern(&mut self, value: &Arc<T>) -> Arc<T> {
        if let Some(shared) = self.values.get(value) {
            return shared.clone();
        }
        if self.values.len() >= self.sweep_at {
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.sweep_at = (2 * self.values.len()).max(1024);
        }
        self.values.insert(value.clone());
        value.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy_and_unused_ones_are_swept() {
        let mut interner = Interner::default();
        let a = interner.intern(&Arc::new("check /health".to_string()));
        let b = interner.intern(&Arc::new("check /health".to_string()));
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        for n in 0..2048 {
            interner.intern(&Arc::new(n.to_string()));
        }
        assert!(
            interner.values.len() <= 1025,
            "values only the interner held were swept, {} left",
            interner.values.len()
        );
    }
}
