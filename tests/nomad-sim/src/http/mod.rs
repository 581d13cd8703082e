//! A small HTTP/1.1 server: the event stream needs raw control of the wire
//! (close-delimited bodies, chunks written as Go flushes them, cuts mid-frame),
//! so every endpoint is served by hand on the TCP stream.

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod server;
