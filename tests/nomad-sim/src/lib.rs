//! The Nomad API simulator (in progress).
