//! HTTP-level tests of the Nomad simulator: every assertion is about behaviour
//! real Nomad shows on the wire.

mod acl;
mod common;
mod control;
mod jobs;
mod services;
mod stream;
mod task_api;
