//! The matrix's backends: real ones for the run, or a dry description of the
//! same behaviours (no sockets) so the case list is known without starting
//! anything (the docs/fidelity.md drift test).

use super::raw::{RawBackend, Script};
use hnc_tests::backends::TcpBackend;
use hnc_tests::behaviour::{Listener, Net, Site};
use hnc_tests::grpc::{GrpcBareServer, GrpcHealthServer};
use hnc_tests::haproxy::free_port;
use hnc_tests::scripted::ScriptedBackend;
use std::collections::BTreeMap;

/// What listens where, as the reference checker reads it, and — when live —
/// the real servers behind it (kept until dropped).
pub struct Backends {
    live: bool,
    /// Every behaviour handed out, by port: the reference checker's [`Net`].
    listeners: BTreeMap<u16, Listener>,
    /// The next made-up port of a dry run.
    next_dry_port: u16,
    scripted: Vec<ScriptedBackend>,
    tcp: Vec<TcpBackend>,
    grpc: Vec<GrpcHealthServer>,
    bare: Vec<GrpcBareServer>,
    raw: Vec<RawBackend>,
}

impl Backends {
    /// Starts a real server for every behaviour asked for.
    pub fn live() -> Backends {
        Backends::new(true)
    }

    /// Starts nothing: ports are made up, the behaviours only described.
    pub fn dry() -> Backends {
        Backends::new(false)
    }

    fn new(live: bool) -> Backends {
        Backends {
            live,
            listeners: BTreeMap::new(),
            next_dry_port: 1,
            scripted: Vec::new(),
            tcp: Vec::new(),
            grpc: Vec::new(),
            bare: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// An HTTP/1.1 server answering as `site`.
    pub async fn http(&mut self, site: Site) -> u16 {
        self.scripted(|_| site, None).await
    }

    /// An HTTP/1.1 server whose site names its own port (e.g. its Host).
    pub async fn http_self(&mut self, site: impl FnOnce(u16) -> Site) -> u16 {
        self.scripted(site, None).await
    }

    /// An HTTPS server with a self-signed certificate, refusing handshakes
    /// without `required_sni` when it is set.
    pub async fn https(&mut self, site: Site, required_sni: Option<&str>) -> u16 {
        self.scripted(|_| site, Some(required_sni)).await
    }

    async fn scripted(&mut self, site: impl FnOnce(u16) -> Site, tls: Option<Option<&str>>) -> u16 {
        if !self.live {
            let port = self.dry_port();
            let listener = match tls {
                None => Listener::Http(site(port)),
                Some(sni) => Listener::Https {
                    site: site(port),
                    required_sni: sni.map(str::to_string),
                },
            };
            self.listeners.insert(port, listener);
            return port;
        }
        let b = match tls {
            None => ScriptedBackend::http(Site::default()).await,
            Some(sni) => ScriptedBackend::https(Site::default(), sni).await,
        };
        b.set_site(site(b.port));
        let port = b.port;
        self.listeners.insert(port, b.listener());
        self.scripted.push(b);
        port
    }

    /// A listener that accepts connections and never says anything.
    pub async fn silent(&mut self) -> u16 {
        let port = if self.live {
            let b = TcpBackend::start().await;
            let port = b.port;
            self.tcp.push(b);
            port
        } else {
            self.dry_port()
        };
        self.listeners.insert(port, Listener::Silent);
        port
    }

    /// A server that answers with exact bytes ([`super::raw`]). Only Go
    /// judges it: the reference model sees a silent listener.
    pub async fn raw(&mut self, script: Script) -> u16 {
        self.raw_backend(script, false).await
    }

    /// A server that resets every connection as soon as it accepts it.
    pub async fn reset_at_once(&mut self) -> u16 {
        self.raw_backend(super::raw::fixed(Vec::new(), super::raw::Then::Reset), true)
            .await
    }

    async fn raw_backend(&mut self, script: Script, reset_at_once: bool) -> u16 {
        let port = if self.live {
            let b = RawBackend::start(script, reset_at_once).await;
            let port = b.port;
            self.raw.push(b);
            port
        } else {
            self.dry_port()
        };
        self.listeners.insert(port, Listener::Silent);
        port
    }

    /// A port where nothing listens (connections are refused).
    pub fn closed(&mut self) -> u16 {
        if self.live {
            free_port()
        } else {
            self.dry_port()
        }
    }

    /// A gRPC health server with these statuses (service → SERVING; `""` is
    /// the server's own); any other service is unknown.
    ///
    /// # Panics
    /// The server cannot start.
    pub async fn grpc_health(&mut self, statuses: &[(&str, bool)]) -> u16 {
        if !self.live {
            // A fresh server reports its own health SERVING until told otherwise.
            let mut described = BTreeMap::from([(String::new(), true)]);
            described.extend(statuses.iter().map(|(s, up)| (s.to_string(), *up)));
            let port = self.dry_port();
            self.listeners.insert(port, Listener::Grpc(Some(described)));
            return port;
        }
        let server = GrpcHealthServer::start()
            .await
            .expect("a gRPC health server");
        for (service, serving) in statuses {
            server.set(service, *serving).await;
        }
        let port = server.addr.port();
        self.listeners.insert(port, server.listener());
        self.grpc.push(server);
        port
    }

    /// A gRPC server without the health service (every call UNIMPLEMENTED).
    ///
    /// # Panics
    /// The server cannot start.
    pub async fn grpc_bare(&mut self) -> u16 {
        let port = if self.live {
            let server = GrpcBareServer::start().await.expect("a bare gRPC server");
            let port = server.addr.port();
            self.bare.push(server);
            port
        } else {
            self.dry_port()
        };
        self.listeners.insert(port, Listener::Grpc(None));
        port
    }

    fn dry_port(&mut self) -> u16 {
        self.next_dry_port += 1;
        self.next_dry_port
    }

    /// What listens where, for the reference checker.
    pub fn net(&self) -> Net {
        Net {
            listeners: self.listeners.clone(),
        }
    }

    /// What the HTTP backends on `ports` last received (for failure messages).
    pub fn seen(&self, ports: &[(&str, u16)]) -> String {
        self.scripted
            .iter()
            .filter(|b| ports.iter().any(|(_, p)| *p == b.port))
            .map(|b| format!("{}: {:?}", b.port, b.seen()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
