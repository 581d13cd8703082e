//! The watch side: the Nomad API client, and the list + event stream that become typed `Change`s and the `Catalog`.

pub(super) mod backoff;
pub(super) mod client;
pub(super) mod deployments;
pub(super) mod events;
pub(super) mod frames;
pub(super) mod health;
pub(super) mod http;
pub(super) mod instance;
pub(super) mod store;
pub(super) mod watcher;
pub(super) mod wire;
