//! Starts the job-spec look-ups of new instances as their events arrive.
//!
//! The loop plans a batch only after the pass before it has synced; in a
//! burst of placements that pass can take a while. Forwarding the watcher's
//! changes through here starts each new enabled instance's look-up at once,
//! so that the pass which plans it finds its allocation and job version
//! cached, or already on their way.

use crate::nomad::{Api, Change, Checks};
use crate::plan::tags::ServiceTags;
use tokio::sync::mpsc::{Receiver, Sender};

/// Passes every change from `from` to `to`, in order, warming the caches of
/// `checks` for the instances that upserts bring; ends with either side.
pub(super) async fn forward<C: Api>(
    mut from: Receiver<Change>,
    to: Sender<Change>,
    checks: Checks<C>,
) {
    while let Some(change) = from.recv().await {
        if let Change::Upserted(instance) = &change
            && ServiceTags::parse(&instance.tags).enabled
        {
            let (checks, instance) = (checks.clone(), instance.clone());
            tokio::spawn(async move { checks.prefetch(&instance).await });
        }
        if to.send(change).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nomad::fake::FakeApi;
    use crate::nomad::{Config, Instance};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn upsert(id: &str, tags: &[&str]) -> Change {
        Change::Upserted(Arc::new(Instance {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            job: id.into(),
            alloc: format!("{id}-alloc"),
            ..Instance::test(id, "web", 8080)
        }))
    }

    #[tokio::test]
    async fn changes_pass_in_order_and_only_enabled_upserts_are_looked_up() {
        let api = FakeApi::default();
        let settings = Config::default()
            .resolve(&BTreeMap::new())
            .expect("settings");
        let checks = crate::nomad::Checks::new(api.clone(), &settings);
        let (tx, watched) = mpsc::channel(8);
        let (forwarded, mut changes) = mpsc::channel(8);
        let task = tokio::spawn(forward(watched, forwarded, checks));
        tx.send(upsert("plain", &[])).await.expect("send");
        tx.send(upsert("enabled", &["haproxy.enable=true"]))
            .await
            .expect("send");
        drop(tx);
        let mut ids = Vec::new();
        while let Some(change) = changes.recv().await {
            if let Change::Upserted(i) = change {
                ids.push(i.id.clone());
            }
        }
        task.await.expect("forward ends with its input");
        assert_eq!(ids, ["plain", "enabled"]);
        // Only the enabled instance's allocation is read (the fake knows
        // none, so the read fails; the look-up itself will say so).
        for _ in 0..100 {
            if !api.state().calls.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let calls: Vec<String> = api.state().calls.iter().map(|(w, _)| w.clone()).collect();
        assert!(!calls.is_empty(), "the enabled instance was looked up");
        assert!(calls.iter().all(|c| c.contains("enabled")), "{calls:?}");
    }
}
