//! A real gRPC health server (tonic-health) on 127.0.0.1, for gRPC check tests.

use std::net::SocketAddr;
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
    }
}
