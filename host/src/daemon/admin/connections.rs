//! The admin listener's accept loop: a bounded number of connections, each
//! closed when its request header is slow or it stops moving bytes.
//!
//! Without bounds, idle connections held open by anyone who can reach the
//! port exhaust the daemon's file descriptors, and then HAProxy's sockets
//! and Nomad's streams fail too. At the limit, the oldest connection without
//! a request in flight makes room, so a scraper still gets in while a flood
//! of idle connections is open.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bounds of the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once. Default 256: Prometheus and a few humans
    /// need a handful; the daemon's other sockets keep their descriptors.
    pub max_connections: usize,
    /// A request header must arrive within this, counted from the
    /// connection's start or the previous response: it also closes idle
    /// keep-alive connections. Default 5 s.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte either way for this long is closed
    /// (a client that sends a header and stops, or stops reading the
    /// response). Default 15 s.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
        }
    }
}

/// The largest request head read (hyper's floor is 8 KiB).
const MAX_HEAD: usize = 16 << 10;

/// Accepts on `listener` and serves `router` within `limits` until
/// `shutdown` resolves; connections then finish their request and close.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Slots::new(limits.max_connections);
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors (EMFILE) or memory: wait rather
                    // than spin; a reset before accept is nothing.
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tracing::warn!(error = %e, "admin listener: accept failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        match slots.admit() {
            Some(slot) => {
                tasks.spawn(connection(
                    stream,
                    router.clone(),
                    slot,
                    limits,
                    stopping.clone(),
                ));
            }
            // Every slot has a request in flight: close this one at once.
            None => drop(stream),
        }
    }
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Serves one connection until it ends, is evicted, idles out, or (after
/// shutdown) finishes its request.
async fn connection(
    stream: TcpStream,
    router: Router,
    mut slot: Slot,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        io: stream,
        activity: activity.clone(),
    });
    let busy = slot.busy.clone();
    let router = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |req| {
        let guard = Busy::enter(&busy);
        let response = hyper::service::Service::call(&router, req);
        async move {
            let response = response.await;
            drop(guard);
            response
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "admin connection closed");
                }
                return;
            }
            _ = &mut slot.evicted => return,
            changed = stopping.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(idle_until) => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!("admin connection idle for {:?}; closed", limits.idle_timeout);
                    return;
                }
            }
        }
    }
}

/// The open connections, oldest first.
#[derive(Debug)]
struct Slots {
    max: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    by_age: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    busy: Arc<AtomicUsize>,
    evict: oneshot::Sender<()>,
}

/// One admitted connection; dropping it frees the slot.
struct Slot {
    id: u64,
    open: Arc<Mutex<Open>>,
    busy: Arc<AtomicUsize>,
    evicted: oneshot::Receiver<()>,
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots {
            max: max.max(1),
            open: Arc::default(),
        }
    }

    /// A slot for a new connection: at the limit, the oldest connection
    /// without a request in flight is closed for it; `None` when all are busy.
    fn admit(&self) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.by_age.len() >= self.max {
            let idle = open
                .by_age
                .iter()
                .find(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some(entry) = open.by_age.remove(&idle) {
                let _ = entry.evict.send(());
            }
        }
        let id = open.next;
        open.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let (evict, evicted) = oneshot::channel();
        open.by_age.insert(
            id,
            Entry {
                busy: busy.clone(),
                evict,
            },
        );
        Some(Slot {
            id,
            open: self.open.clone(),
            busy,
            evicted,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.by_age.remove(&self.id);
    }
}

/// Marks a request in flight on its connection.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(busy: &Arc<AtomicUsize>) -> Busy {
        busy.fetch_add(1, Ordering::AcqRel);
        Busy(busy.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// When a connection last moved a byte.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A stream that records its activity.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let slots = Slots::new(2);
        let mut a = slots.admit().unwrap();
        let mut b = slots.admit().unwrap();
        let _busy = Busy::enter(&a.busy);
        // a has a request in flight: b, the oldest idle one, goes.
        let c = slots.admit().unwrap();
        assert!(b.evicted.try_recv().is_ok());
        assert!(a.evicted.try_recv().is_err());
        // a and c both busy: a new connection is refused.
        let _busy_c = Busy::enter(&c.busy);
        assert!(slots.admit().is_none());
        drop(c);
        assert!(slots.admit().is_some());
    }
}
