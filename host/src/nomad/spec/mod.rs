//! The job-spec side: the checks of the service block that registered an instance, read from its job version's spec and cached per version.

pub(super) mod alloc_checks;
pub(super) mod allocs;
pub(super) mod checks;
pub mod job;
pub(super) mod matching;
pub(super) mod spec_cache;
