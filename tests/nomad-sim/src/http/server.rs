//! The accept loops (TCP, and the Task API's Unix socket) and the
//! per-connection request loop (keep-alive, hand-off to the event stream,
//! drop on wipe/shutdown).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

use super::request::{Parsed, Request, parse};
use super::response::{Response, negotiate};
use crate::api::{self, Routed};
use crate::sim::Shared;
use crate::stream;

/// One client connection: its two halves and unparsed input.
pub(crate) struct Conn {
    pub rd: Box<dyn AsyncRead + Send + Unpin>,
    pub wr: Box<dyn AsyncWrite + Send + Unpin>,
    pub buf: Vec<u8>,
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The agent's HTTP address.
    Http,
    /// The Task API socket: every request must authenticate.
    TaskApi,
}

/// Accepts TCP connections until the last `Sim` handle is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let (rd, wr) = stream.into_split();
                tokio::spawn(connection(
                    Box::new(rd),
                    Box::new(wr),
                    Via::Http,
                    shared.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Accepts Task API connections (`${NOMAD_SECRETS_DIR}/api.sock`) until the
/// last `Sim` handle is dropped.
pub(crate) async fn serve_task_api(listener: UnixListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let (rd, wr) = stream.into_split();
                tokio::spawn(connection(
                    Box::new(rd),
                    Box::new(wr),
                    Via::TaskApi,
                    shared.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "task API accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The Task API's refusal of a request without a credential it knows.
fn task_api_refusal(shared: &Shared, req: &Request) -> Option<Response> {
    let token =
        crate::acl::token_from_headers(req.header("X-Nomad-Token"), req.header("Authorization"));
    match crate::acl::authenticate_task_api(shared.cfg.acl.as_ref(), &shared.identities, &token) {
        Ok(()) => None,
        Err(401) => Some(Response::text(401, "Unauthorized")),
        Err(_) => Some(crate::api::permission_denied()),
    }
}

/// Reads one request; `Ok(None)` on EOF.
async fn read_request(conn: &mut Conn) -> Result<Option<Request>, (u16, &'static str)> {
    let mut scratch = [0u8; 16 * 1024];
    loop {
        if !conn.buf.is_empty() {
            match parse(&conn.buf) {
                Parsed::Complete(req, used) => {
                    conn.buf.drain(..used);
                    return Ok(Some(*req));
                }
                Parsed::Partial => {}
                Parsed::Invalid(status, msg) => return Err((status, msg)),
            }
        }
        match conn.rd.read(&mut scratch).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => conn.buf.extend_from_slice(&scratch[..n]),
        }
    }
}

async fn connection(
    rd: Box<dyn AsyncRead + Send + Unpin>,
    wr: Box<dyn AsyncWrite + Send + Unpin>,
    via: Via,
    shared: Arc<Shared>,
) {
    let mut kill = shared.kill.subscribe();
    let mut conn = Conn {
        rd,
        wr,
        buf: Vec::new(),
    };
    loop {
        let next = tokio::select! {
            r = read_request(&mut conn) => r,
            _ = kill.changed() => return,
        };
        let req = match next {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err((status, msg)) => {
                let bytes = Response::text(status, msg).to_bytes(None, false);
                let _ = conn.wr.write_all(&bytes).await;
                return;
            }
        };
        let refused = if via == Via::TaskApi {
            task_api_refusal(&shared, &req)
        } else {
            None
        };
        let routed = match refused {
            Some(resp) => Routed::Response(resp),
            None => tokio::select! {
                r = api::dispatch(&shared, &req) => r,
                _ = kill.changed() => return,
            },
        };
        match routed {
            Routed::Response(resp) => {
                tracing::debug!(method = %req.method, path = %req.path, status = resp.status, "request");
                let bytes = resp.to_bytes(negotiate(req.header("Accept-Encoding")), req.keep_alive);
                if conn.wr.write_all(&bytes).await.is_err() || !req.keep_alive {
                    return;
                }
            }
            Routed::Stream(sreq) => {
                tracing::debug!(path = %req.path, "event stream opened");
                let reusable = stream::serve(&shared, &mut conn, &req, sreq, &mut kill).await;
                if !reusable || !req.keep_alive {
                    return;
                }
            }
        }
    }
}
