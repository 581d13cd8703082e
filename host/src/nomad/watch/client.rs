//! The Nomad HTTP API as a trait: the reads the watcher and the check
//! look-ups make. [`crate::nomad::HttpClient`] implements it over reqwest; tests
//! implement it with scripted answers.

use super::wire::{AllocStub, NamespaceServices, Registration};
use crate::nomad::error::Result;
use crate::nomad::spec::alloc_checks::CheckResult;
use bytes::Bytes;
use serde_json::Value;
use std::future::Future;

/// A response with its `X-Nomad-Index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed<T> {
    /// `X-Nomad-Index` (0 when absent).
    pub index: u64,
    /// The body.
    pub value: T,
    /// `X-Nomad-NextToken` when more pages follow.
    pub next_token: Option<String>,
}

/// The body of an event stream, chunk by chunk.
pub trait ChunkStream: Send {
    /// The next chunk; `None` at the end of the body.
    ///
    /// # Errors
    /// The connection broke.
    fn chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>>> + Send;
}

/// The Nomad reads the connector makes.
pub trait Api: Clone + Send + Sync + 'static {
    /// The event-stream body type.
    type Stream: ChunkStream;

    /// `GET /v1/services?namespace=NS` (`*` for all readable).
    fn services(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Indexed<Vec<NamespaceServices>>>> + Send;

    /// `GET /v1/service/:name?namespace=NS[&next_token=T]`: one page.
    fn service(
        &self,
        namespace: &str,
        name: &str,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Indexed<Vec<Registration>>>> + Send;

    /// `GET /v1/job/:id`: the latest version, as JSON.
    fn job(&self, namespace: &str, id: &str) -> impl Future<Output = Result<Value>> + Send;

    /// `GET /v1/job/:id/versions`: the tracked versions, newest first.
    fn job_versions(
        &self,
        namespace: &str,
        id: &str,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;

    /// `GET /v1/job/:id/allocations`: stubs with `JobVersion` and `TaskGroup`.
    fn job_allocations(
        &self,
        namespace: &str,
        id: &str,
    ) -> impl Future<Output = Result<Vec<AllocStub>>> + Send;

    /// `GET /v1/allocation/:id`, reduced to ID, group and allocated ports.
    fn allocation(
        &self,
        namespace: &str,
        id: &str,
    ) -> impl Future<Output = Result<AllocStub>> + Send;

    /// `GET /v1/client/allocation/:id/checks`: Nomad's latest result of
    /// each check of the allocation (Nomad 1.4+), the body read up to
    /// [`crate::nomad::MAX_CHECKS_BODY`].
    fn alloc_checks(
        &self,
        namespace: &str,
        alloc: &str,
    ) -> impl Future<Output = Result<Vec<CheckResult>>> + Send;

    /// `GET /v1/event/stream?topic=..&index=N&namespace=NS`: the response
    /// once its status is known (2xx); the body is read from the stream.
    fn event_stream(
        &self,
        namespace: &str,
        topics: &[&str],
        index: u64,
    ) -> impl Future<Output = Result<Self::Stream>> + Send;
}
