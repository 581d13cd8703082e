//! Off wasm (a native `cargo test`), [`crate::log`] has no host to call: it
//! keeps each line in a per-thread list instead, which tests read with
//! [`take_logs`].

use hnc_core::model::LogLevel;
#[cfg(not(target_arch = "wasm32"))]
use std::cell::RefCell;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CAPTURED: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
}

/// Keeps one line for [`take_logs`].
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn push(level: LogLevel, message: &str) {
    CAPTURED.with(|c| c.borrow_mut().push((level, message.to_string())));
}

/// The lines this thread logged through [`crate::log`] since the last call,
/// oldest first. Natively only: in wasm the host gets them, and this is empty.
pub fn take_logs() -> Vec<(LogLevel, String)> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }
    #[cfg(target_arch = "wasm32")]
    {
        Vec::new()
    }
}
