//! The built-in plugins, compiled by build.rs and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
