//! Test support: real HAProxy, real backends.
