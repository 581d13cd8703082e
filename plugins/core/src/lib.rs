//! The check-mapping data model (one Rust type per type of `wit/mapping.wit`)
//! and the built-in mappings.
//!
//! Pure Rust without I/O: the host uses the model as its own domain types and
//! runs the built-ins natively as a benchmark baseline; the wasm guests in
//! `plugins/` wrap the same functions.

#![deny(missing_docs)]

pub mod builtin;
pub mod model;

pub use model::*;
