//! A panic hook that sends the panic's message and place through
//! [`crate::log`], so that the host logs them with the plugin's name. Without
//! it a panic in wasm reaches the host only as a trap ("wasm `unreachable`
//! instruction executed").

use hnc_core::model::LogLevel;
use std::panic::PanicHookInfo;
use std::sync::Once;

/// Installs the hook once (later calls cost one atomic load); it replaces
/// any hook set before. [`crate::plugin!`] calls it at the start of every
/// call into the plugin.
pub fn forward_panics_to_log() {
    static INSTALLED: Once = Once::new();
    // A plain `fn` boxes to nothing: installing allocates no memory that
    // would stay live across calls (which `CallArena` could never rewind).
    INSTALLED.call_once(|| std::panic::set_hook(Box::new(forward)));
}

fn forward(info: &PanicHookInfo<'_>) {
    let message = format!("plugin {info}");
    // Natively, where a test harness shows stderr, say it there too.
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
    crate::log(LogLevel::Error, &message);
}
