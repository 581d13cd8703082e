//! The (re)list of a scope: every registration, the index to stream from,
//! and the detection of a server whose index went backwards.

use super::ScopeLoop;
use crate::nomad::error::Result;
use crate::nomad::watch::client::Api;
use crate::nomad::watch::instance::{Change, Instance};
use crate::nomad::watch::wire::Registration;
use std::collections::HashMap;
use std::sync::Arc;

impl<C: Api> ScopeLoop<C> {
    /// Lists every instance of the scope; the `Relisted` change and the
    /// index to stream from.
    pub(super) async fn relist(&mut self) -> Result<(Vec<Change>, u64)> {
        let listed = self.client.services(self.scope.param()).await?;
        let l0 = listed.index;
        let mut instances = Vec::new();
        let mut names = HashMap::new();
        // Every service's pages, read concurrently (the client bounds how
        // many requests are in flight).
        let mut reads = tokio::task::JoinSet::new();
        for ns in listed.value {
            if !self.scope.covers(&ns.namespace) {
                continue;
            }
            for stub in ns.services {
                let client = self.client.clone();
                let namespace = ns.namespace.clone();
                reads.spawn(async move {
                    let pages = read_service(&client, &namespace, &stub.service_name).await;
                    ((namespace, stub.service_name), pages)
                });
            }
        }
        while let Some(joined) = reads.join_next().await {
            let Ok((key, pages)) = joined else {
                continue;
            };
            let (index, regs) = pages?;
            let at = names.entry(key).or_insert(0);
            *at = index.max(*at);
            for reg in regs {
                match Instance::try_from(reg) {
                    Ok(i) if self.scope.covers(&i.namespace) => instances.push(i),
                    Ok(_) => {}
                    Err(reason) => {
                        tracing::warn!(scope = %self.scope, %reason, "ignoring a registration")
                    }
                }
            }
        }
        let reset = self.last_index.is_some() && l0 < self.services_index;
        if reset {
            tracing::warn!(scope = %self.scope, list_index = l0, known_index = self.services_index,
                "Nomad's index went backwards (a wiped server, e.g. a restarted `nomad agent -dev`): starting over from its state");
            self.board.update(self.key(), |h| h.index_resets += 1);
            if let Some(inv) = &self.invalidate {
                inv.server_reset();
            }
        }
        let from = match self.last_index {
            Some(last) if !reset => last.min(l0) + 1,
            _ => l0 + 1,
        };
        self.last_index = Some(match self.last_index {
            Some(last) if !reset => last.max(l0),
            _ => l0,
        });
        self.services_index = if reset {
            l0
        } else {
            self.services_index.max(l0)
        };
        self.stale_all = l0;
        self.relist_due = None;
        self.stale_names = names;
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        let instances: Vec<Arc<Instance>> = instances.into_iter().map(Arc::new).collect();
        self.view.replace(&self.scope, instances.clone());
        let last = self.last_index.unwrap_or(l0);
        self.board.update(self.key(), |h| h.last_index = last);
        tracing::info!(scope = %self.scope, instances = instances.len(), index = l0, "listed Nomad services");
        Ok((
            vec![Change::Relisted {
                scope: self.scope.clone(),
                instances,
            }],
            from,
        ))
    }
}

/// Every page of one service's registrations, and the highest index seen.
async fn read_service<C: Api>(
    client: &C,
    namespace: &str,
    service: &str,
) -> Result<(u64, Vec<Registration>)> {
    let mut token: Option<String> = None;
    let mut index = 0;
    let mut regs = Vec::new();
    loop {
        let page = client.service(namespace, service, token.as_deref()).await?;
        index = page.index.max(index);
        regs.extend(page.value);
        match page.next_token {
            Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
            _ => return Ok((index, regs)),
        }
    }
}
