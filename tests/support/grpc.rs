//! A real gRPC health server (tonic-health) on 127.0.0.1, for gRPC check tests,
//! and a gRPC server without the health service.

use crate::behaviour::Listener;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A `grpc.health.v1.Health` server; stops when dropped.
pub struct GrpcHealthServer {
    /// Where it listens.
    pub addr: SocketAddr,
    reporter: HealthReporter,
    /// What `set` was told (service → SERVING), for [`Self::listener`].
    statuses: Mutex<BTreeMap<String, bool>>,
    _shutdown: oneshot::Sender<()>,
}

impl GrpcHealthServer {
    /// Starts a server whose overall health ("") is SERVING.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start() -> std::io::Result<GrpcHealthServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (reporter, service) = tonic_health::server::health_reporter();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(GrpcHealthServer {
            addr,
            reporter,
            statuses: Mutex::new(BTreeMap::from([(String::new(), true)])),
            _shutdown: tx,
        })
    }

    /// Sets a service's status (`""` is the server's overall health).
    pub async fn set(&self, service: &str, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status(service, status).await;
        if let Ok(mut statuses) = self.statuses.lock() {
            statuses.insert(service.to_string(), serving);
        }
    }

    /// What it is, for the reference checker's [`crate::behaviour::Net`]:
    /// the statuses set so far; any other service is unknown (NOT_FOUND).
    pub fn listener(&self) -> Listener {
        let statuses = self.statuses.lock().map(|s| s.clone()).unwrap_or_default();
        Listener::Grpc(Some(statuses))
    }
}

/// A gRPC server without the `grpc.health.v1.Health` service: every call,
/// the health check included, gets `UNIMPLEMENTED`. Stops when dropped.
pub struct GrpcBareServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl GrpcBareServer {
    /// Starts it.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start() -> std::io::Result<GrpcBareServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(GrpcBareServer {
            addr,
            _shutdown: tx,
        })
    }

    /// What it is, for the reference checker.
    pub fn listener(&self) -> Listener {
        Listener::Grpc(None)
    }
}
