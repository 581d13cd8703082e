//! The accept loop and per-connection request loop (keep-alive, hand-off to the
//! event stream, drop on wipe/shutdown).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::request::{Parsed, Request, parse};
use super::response::{Response, negotiate};
use crate::api::{self, Routed};
use crate::sim::Shared;
use crate::stream;

/// One client connection: its two halves and unparsed input.
pub(crate) struct Conn {
    pub rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    pub buf: Vec<u8>,
}

/// Accepts connections until the last `Sim` handle is dropped.
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
                tokio::spawn(connection(stream, shared.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
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

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut kill = shared.kill.subscribe();
    let (rd, wr) = stream.into_split();
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
        let routed = tokio::select! {
            r = api::dispatch(&shared, &req) => r,
            _ = kill.changed() => return,
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
