//! Test doubles: a scripted [`Api`] and a `join_all` for concurrency tests.

use super::error::{Error, Result};
use super::watch::client::{Api, ChunkStream, Indexed};
use super::watch::wire::{AllocStub, NamespaceServices, Registration, ServiceStub};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// How one stream request is answered.
#[derive(Debug)]
pub(crate) enum Script {
    /// The request fails.
    Fail(Error),
    /// 200, then these chunks, then EOF (or silence if `hang`).
    Body { chunks: Vec<Bytes>, hang: bool },
}

/// A scripted Nomad.
#[derive(Debug, Default)]
pub(crate) struct FakeState {
    /// `X-Nomad-Index` of the lists.
    pub index: u64,
    /// Registrations by (namespace, name).
    pub services: BTreeMap<(String, String), Vec<Registration>>,
    /// Error for every list request while set.
    pub list_error: Option<fn() -> Error>,
    /// Stream answers, in order; when empty, streams hang.
    pub streams: VecDeque<Script>,
    /// Every request: (what, when).
    pub calls: Vec<(String, Instant)>,
    /// Jobs: (namespace, id) → versions (JSON), newest last.
    pub jobs: BTreeMap<(String, String), Vec<Value>>,
    /// Allocation stubs by (namespace, job).
    pub allocs: BTreeMap<(String, String), Vec<AllocStub>>,
    /// Full allocations by ID.
    pub full_allocs: BTreeMap<String, AllocStub>,
    /// Check results by allocation ID.
    pub alloc_checks: BTreeMap<String, Vec<super::CheckResult>>,
}

/// The fake client (clones share state).
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeApi(pub Arc<Mutex<FakeState>>);

impl FakeApi {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }

    pub(crate) fn calls(&self, prefix: &str) -> Vec<Instant> {
        self.state()
            .calls
            .iter()
            .filter(|(w, _)| w.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    }

    fn record(&self, what: String) {
        self.state().calls.push((what, Instant::now()));
    }
}

/// A scripted body.
#[derive(Debug)]
pub(crate) struct FakeStream {
    chunks: VecDeque<Bytes>,
    hang: bool,
}

impl ChunkStream for FakeStream {
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        match self.chunks.pop_front() {
            Some(c) => Ok(Some(c)),
            None if self.hang => std::future::pending().await,
            None => Ok(None),
        }
    }
}

fn not_found(what: &str) -> Error {
    Error::from_status(what.into(), 404, "not found")
}

impl Api for FakeApi {
    type Stream = FakeStream;

    async fn services(&self, namespace: &str) -> Result<Indexed<Vec<NamespaceServices>>> {
        self.record(format!("services {namespace}"));
        let st = self.state();
        if let Some(e) = st.list_error {
            return Err(e());
        }
        let mut by_ns: BTreeMap<String, Vec<ServiceStub>> = BTreeMap::new();
        for ((ns, name), regs) in &st.services {
            if (namespace == "*" || namespace == ns) && !regs.is_empty() {
                by_ns.entry(ns.clone()).or_default().push(ServiceStub {
                    service_name: name.clone(),
                });
            }
        }
        Ok(Indexed {
            index: st.index,
            value: by_ns
                .into_iter()
                .map(|(namespace, services)| NamespaceServices {
                    namespace,
                    services,
                })
                .collect(),
            next_token: None,
        })
    }

    async fn service(
        &self,
        namespace: &str,
        name: &str,
        _next: Option<&str>,
    ) -> Result<Indexed<Vec<Registration>>> {
        self.record(format!("service {namespace}/{name}"));
        let st = self.state();
        let value = st
            .services
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default();
        Ok(Indexed {
            index: st.index,
            value,
            next_token: None,
        })
    }

    async fn job(&self, namespace: &str, id: &str) -> Result<Value> {
        self.record(format!("job {namespace}/{id}"));
        let st = self.state();
        st.jobs
            .get(&(namespace.to_string(), id.to_string()))
            .and_then(|v| v.last().cloned())
            .ok_or_else(|| not_found("job"))
    }

    async fn job_versions(&self, namespace: &str, id: &str) -> Result<Vec<Value>> {
        self.record(format!("versions {namespace}/{id}"));
        let st = self.state();
        let mut v = st
            .jobs
            .get(&(namespace.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| not_found("versions"))?;
        v.reverse();
        Ok(v)
    }

    async fn job_allocations(&self, namespace: &str, id: &str) -> Result<Vec<AllocStub>> {
        self.record(format!("allocations {namespace}/{id}"));
        let st = self.state();
        Ok(st
            .allocs
            .get(&(namespace.to_string(), id.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn allocation(&self, _namespace: &str, id: &str) -> Result<AllocStub> {
        self.record(format!("allocation {id}"));
        let st = self.state();
        st.full_allocs
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("alloc"))
    }

    async fn alloc_checks(&self, _namespace: &str, alloc: &str) -> Result<Vec<super::CheckResult>> {
        self.record(format!("alloc_checks {alloc}"));
        self.state()
            .alloc_checks
            .get(alloc)
            .cloned()
            .ok_or_else(|| not_found("GET /v1/client/allocation/:id/checks"))
    }

    async fn event_stream(&self, namespace: &str, _t: &[&str], index: u64) -> Result<FakeStream> {
        self.record(format!("stream {namespace} {index}"));
        let next = self.state().streams.pop_front();
        match next {
            Some(Script::Fail(e)) => Err(e),
            Some(Script::Body { chunks, hang }) => Ok(FakeStream {
                chunks: chunks.into(),
                hang,
            }),
            None => Ok(FakeStream {
                chunks: VecDeque::from([Bytes::from_static(b"{}\n")]),
                hang: true,
            }),
        }
    }
}

/// Polls all futures concurrently on this task; their outputs in order.
pub(crate) async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
