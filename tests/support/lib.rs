//! Test support: real HAProxy processes, real backends, fixtures.

#![allow(missing_docs)]

pub mod backends;
pub mod behaviour;
pub mod convergence;
pub mod floor;
pub mod grammar;
pub mod grpc;
pub mod haproxy;
pub mod hostile;
pub mod load;
pub mod logs;
pub mod mapping;
pub mod nomad_checker;
pub mod process;
pub mod scripted;
pub mod tls;
pub mod world;
