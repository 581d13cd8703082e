//! Test support: real HAProxy processes, real backends, fixtures.

#![allow(missing_docs)]

pub mod grammar;
pub mod grpc;
pub mod hostile;
pub mod mapping;
