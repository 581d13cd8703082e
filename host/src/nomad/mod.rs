//! The Nomad side: job specifications (and, later, the client and event stream).

pub mod job;
