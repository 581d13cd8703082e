//! What the host gives a plugin instance: its store data, the `log` import
//! (metered: fuel per byte, lines and bytes capped per call), and the
//! wall-time deadline checked at every epoch tick.

use super::bindings::{self, haproxy_nomad::mapping::types as w};
use super::limits::{Limiter, Limits};
use crate::escape::sanitize;
use hnc_core::model::LogLevel;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker, WasmStr};
use wasmtime::{Store, StoreContextMut, UpdateDeadline};

/// Longest log line or refusal message kept from a plugin.
pub(super) const MAX_MESSAGE: usize = 1024;

/// Fuel a `log` call costs besides one unit per byte of its message.
const LOG_CALL_FUEL: u64 = 100;

/// Flags shared by a plugin and all its instances.
#[derive(Debug, Default)]
pub(super) struct Switches {
    /// Every running and future call traps at once (the connector stops).
    pub(super) interrupted: AtomicBool,
    /// `log` calls are dropped (`plugin check`'s timing loop).
    pub(super) muted: AtomicBool,
}

/// The store data of one plugin instance.
pub(super) struct HostState {
    plugin: Arc<str>,
    limiter: Limiter,
    switches: Arc<Switches>,
    /// When the call in flight must have ended.
    deadline: Instant,
    logs_left: u32,
    log_bytes_left: usize,
    /// Messages dropped by the caps in this call.
    logs_dropped: u32,
}

impl bindings::haproxy_nomad::mapping::types::Host for HostState {}

/// A store for one instance of `plugin`, bounded by `limits`.
pub(super) fn new_store(
    engine: &wasmtime::Engine,
    plugin: Arc<str>,
    limits: Limits,
    switches: Arc<Switches>,
) -> wasmtime::Result<Store<HostState>> {
    let mut store = Store::new(
        engine,
        HostState {
            plugin,
            limiter: Limiter { limits },
            switches,
            deadline: Instant::now() + limits.deadline(),
            logs_left: limits.log_lines_per_call,
            log_bytes_left: limits.log_bytes_per_call,
            logs_dropped: 0,
        },
    );
    store.limiter(|s| &mut s.limiter);
    // Lifting a string or list costs this "hostcall fuel" per byte before
    // it is copied, so an answer (or a log message) is bounded while it is
    // read, not after (a list aliasing one large string many times never
    // reaches the host). Host-side list elements weigh more than the
    // guest's, hence the margin; the exact cap is checked on the result.
    store.set_hostcall_fuel(limits.output_bytes.saturating_mul(2).max(4096));
    store.epoch_deadline_callback(|ctx| {
        let state = ctx.data();
        if state.switches.interrupted.load(Ordering::Relaxed) || Instant::now() >= state.deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    store.set_epoch_deadline(1);
    store.set_fuel(limits.fuel)?;
    Ok(store)
}

/// Resets the per-call budgets of a store before a call.
pub(super) fn start_call(store: &mut Store<HostState>, limits: &Limits) -> wasmtime::Result<()> {
    let state = store.data_mut();
    state.deadline = Instant::now() + limits.deadline();
    state.logs_left = limits.log_lines_per_call;
    state.log_bytes_left = limits.log_bytes_per_call;
    state.logs_dropped = 0;
    store.set_epoch_deadline(1);
    store.set_fuel(limits.fuel)
}

/// Log messages the caps dropped during the last call.
pub(super) fn logs_dropped(store: &Store<HostState>) -> u32 {
    store.data().logs_dropped
}

/// Links the mapping types and the metered `log` import.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    w::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    linker
        .root()
        .func_wrap("log", |store, (level, message): (w::LogLevel, WasmStr)| {
            log(store, level, &message)
        })
}

/// The `log` import: charges fuel for the message's length, then logs it
/// if the call's line and byte budgets allow.
fn log(
    mut store: StoreContextMut<'_, HostState>,
    level: w::LogLevel,
    message: &WasmStr,
) -> wasmtime::Result<()> {
    let (len, text) = {
        let text = message.to_str(&store)?;
        let state = store.data();
        let allowed = state.logs_left > 0
            && text.len() <= state.log_bytes_left
            && !state.switches.muted.load(Ordering::Relaxed);
        (text.len(), allowed.then(|| sanitize(&text, MAX_MESSAGE)))
    };
    let fuel = store.get_fuel()?;
    // Out of fuel: the next instruction traps as a timeout.
    store.set_fuel(fuel.saturating_sub(LOG_CALL_FUEL + len as u64))?;
    let state = store.data_mut();
    let Some(message) = text else {
        state.logs_dropped = state.logs_dropped.saturating_add(1);
        return Ok(());
    };
    state.logs_left -= 1;
    state.log_bytes_left -= len;
    let plugin = &*state.plugin;
    match bindings::level_from_wit(level) {
        LogLevel::Debug => tracing::debug!(plugin, "{message}"),
        LogLevel::Info => tracing::info!(plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(plugin, "{message}"),
        LogLevel::Error => tracing::error!(plugin, "{message}"),
    }
    Ok(())
}
