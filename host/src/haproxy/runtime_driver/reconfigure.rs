//! The reload step of the runtime driver: render, `haproxy -c`, state dump, reload, confirm.

use super::{RuntimeDriver, State};
use crate::haproxy::actual::{parse_backends, parse_servers_state};
use crate::haproxy::driver::HeldBack;
use crate::haproxy::error::{Error, Result};
use crate::haproxy::managed_file::{self, sibling};
use crate::haproxy::reload::{self, Reloaded};
use crate::haproxy::{proxy_ids, state_files, validate};
use crate::plan::{BackendChange, Desired, OpState, ServerChange};
use std::collections::BTreeSet;
use std::path::Path;

/// A reload that went through, perhaps without the backends `haproxy -c`
/// blamed.
pub(super) struct Reconfigured {
    pub reloaded: Reloaded,
    /// Operator-backend servers that were UP just before (to restore).
    pub restore_up: BTreeSet<(String, String)>,
    /// The backends reloaded.
    pub backends: Vec<String>,
    /// The backends whose changes were left out, and why.
    pub held_back: Option<HeldBack>,
}

impl RuntimeDriver {
    /// [`RuntimeDriver::reload`]; when `haproxy -c` refuses the render and
    /// blames only some of the changed backends, reloads once more without
    /// their changes, so one bad backend does not hold back the others.
    pub(super) async fn reload_isolating(
        &self,
        st: &mut State,
        desired: &Desired,
        changes: &[BackendChange],
        adds: &[ServerChange],
    ) -> Result<Reconfigured> {
        let changed: BTreeSet<String> = changes.iter().map(|c| c.backend().to_string()).collect();
        let (alerts, kept_at) = match self.reload(st, desired, changes, adds).await {
            Ok((reloaded, restore_up)) => {
                return Ok(Reconfigured {
                    reloaded,
                    restore_up,
                    backends: changed.into_iter().collect(),
                    held_back: None,
                });
            }
            Err(Error::ValidationFailed { alerts, kept_at }) => (alerts, kept_at),
            Err(e) => return Err(e),
        };
        let render = st.rejected.as_ref().map_or("", |(text, ..)| text.as_str());
        let blamed = validate::culprits(&alerts, render, &kept_at, &changed);
        if blamed.is_empty() || blamed.len() == changed.len() {
            return Err(Error::ValidationFailed { alerts, kept_at });
        }
        tracing::warn!(
            held_back = ?blamed,
            "haproxy -c refused the changes of some backends; reloading the others without them"
        );
        let rest: Vec<BackendChange> = changes
            .iter()
            .filter(|c| !blamed.contains(c.backend()))
            .cloned()
            .collect();
        let (reloaded, restore_up) = self.reload(st, desired, &rest, adds).await?;
        Ok(Reconfigured {
            reloaded,
            restore_up,
            backends: changed.difference(&blamed).cloned().collect(),
            held_back: Some(HeldBack {
                backends: blamed.into_iter().collect(),
                alerts,
                kept_at,
            }),
        })
    }

    /// Renders, validates, dumps the states and reloads; returns the
    /// operator-backend servers that were UP just before (to restore them).
    pub(super) async fn reload(
        &self,
        st: &mut State,
        desired: &Desired,
        changes: &[BackendChange],
        adds: &[ServerChange],
    ) -> Result<(Reloaded, BTreeSet<(String, String)>)> {
        let started = std::time::Instant::now();
        let next = st.ledger.for_reload(desired, changes, adds);
        let text = managed_file::render(&next.dynamic, &self.files.state_token);
        if let Some((render, alerts, kept_at)) = &st.rejected
            && *render == text
        {
            return Err(Error::ValidationFailed {
                alerts: alerts.clone(),
                kept_at: kept_at.clone(),
            });
        }
        let managed = &self.config.managed_config;
        let candidate = sibling(managed, "candidate");
        self.files.write("candidate", &candidate, &text).await?;
        let checked = validate::check(
            &self.config.haproxy_bin,
            &self.config.operator_configs,
            &candidate,
            self.config.reload_timeout(),
        )
        .await;
        if let Err(e) = checked {
            return Err(self.rejected(st, e, text, &candidate).await);
        }
        st.rejected = None;
        let validated = started.elapsed();
        let replies = self
            .stats_socket
            .batch(&["show servers state", "show stat -1 3 -1"])
            .await?;
        let [dump, stat] = replies.as_slice() else {
            return Err(Error::BadReply {
                what: "show servers state; show stat",
                reply: replies.concat().chars().take(200).collect(),
            });
        };
        let restore_up = parse_servers_state(dump)?
            .into_iter()
            .filter(|r| r.op == OpState::Up)
            .filter(|r| {
                st.ledger
                    .custom
                    .get(&r.backend)
                    .is_some_and(|s| s.contains_key(&r.server))
            })
            .map(|r| (r.backend, r.server))
            .collect();
        let ids = proxy_ids::predict(stat, &st.ledger.dynamic, &next.dynamic);
        let shards = state_files::for_reload(dump, &next.dynamic, &ids);
        self.files.write_states(shards).await?;
        self.files.install(&candidate).await?;
        self.files.write_ledger_maps(&next).await?;
        let prepared = started.elapsed();
        let reloaded = match reload::reload(
            &self.master,
            &self.stats_socket,
            self.config.reload_timeout(),
            self.version.capabilities(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                // HAProxy still runs the old config: so must the file.
                let old = managed_file::render(&st.ledger.dynamic, &self.files.state_token);
                self.files.write("config", managed, &old).await?;
                self.stats.update(|s| s.reloads_failed += 1);
                return Err(e);
            }
        };
        st.ledger = next;
        self.stats.update(|s| s.reloads += 1);
        let running = parse_backends(&self.stats_socket.send("show backend").await?);
        let missing: Vec<String> = st
            .ledger
            .dynamic
            .keys()
            .filter(|b| !running.contains(b))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Error::ManagedFileNotLoaded {
                path: managed.clone(),
                missing,
            });
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            validate_ms = ms(validated),
            states_ms = ms(prepared - validated),
            reload_ms = ms(started.elapsed() - prepared),
            "haproxy reload timing"
        );
        Ok((reloaded, restore_up))
    }

    /// Keeps a refused render for inspection, logs and counts it.
    async fn rejected(&self, st: &mut State, e: Error, text: String, candidate: &Path) -> Error {
        let Error::ValidationFailed { mut alerts, .. } = e else {
            let _ = tokio::fs::remove_file(candidate).await;
            return e;
        };
        let kept_at = sibling(&self.config.managed_config, "rejected");
        if tokio::fs::rename(candidate, &kept_at).await.is_ok() {
            let shown = candidate.to_string_lossy();
            for alert in &mut alerts {
                if alert.file.as_deref() == Some(&*shown) {
                    alert.file = Some(kept_at.to_string_lossy().into_owned());
                }
            }
        }
        self.stats.update(|s| s.validations_failed += 1);
        let e = Error::ValidationFailed {
            alerts: alerts.clone(),
            kept_at: kept_at.clone(),
        };
        tracing::error!(error = %e, "managed config refused; HAProxy keeps the old one");
        st.rejected = Some((text, alerts, kept_at));
        e
    }
}
