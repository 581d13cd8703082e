//! `GET /v1/event/stream` on the wire: parameter parsing, the ACL check, and the
//! two wire formats (chunked before 1.11.2, hijacked close-delimited after),
//! heartbeats, replay from the buffer, errors and cuts.

mod body;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use self::body::{Body, Compressor};
use crate::acl::{self, Identity};
use crate::config::StreamMode;
use crate::events::{StreamEnd, Subscription, frame_json, parse_topics};
use crate::goduration::go_atoi;
use crate::http::request::Request;
use crate::http::response::{Encoding, Response, negotiate, status_line};
use crate::http::server::Conn;
use crate::sim::Shared;
use crate::state::State;
use crate::timefmt::http_date_now;

/// A validated stream request.
#[derive(Debug, Clone)]
pub(crate) struct StreamRequest {
    index: u64,
    sub: Subscription,
    token: String,
}

/// Parses the stream's parameters; errors are answered before any hijacking.
pub(crate) fn prepare(req: &Request) -> Result<StreamRequest, Response> {
    if req.method != "GET" {
        return Err(Response::text(405, "Invalid method"));
    }
    let index_str = req.query_nonempty("index").unwrap_or("0");
    let index = go_atoi(index_str)
        .map_err(|e| Response::text(400, &format!("Unable to parse index: {e}")))?;
    let topics = parse_topics(&req.query_all("topic"))
        .map_err(|e| Response::text(400, &format!("Invalid topic query: {e}")))?;
    let namespace = req
        .query_nonempty("namespace")
        .unwrap_or("default")
        .to_string();
    Ok(StreamRequest {
        // `uint64(args.Index)`: a negative index wraps to a huge one.
        index: index as u64,
        sub: Subscription { topics, namespace },
        token: acl::token_from_headers(req.header("X-Nomad-Token"), req.header("Authorization")),
    })
}

/// Why a subscription is refused.
enum Denied {
    UnknownToken,
    Lacking,
}

/// `validateNsOp` (1.9.6+): per-topic capabilities; `namespace=*` needs them in
/// every existing namespace.
fn authorize(shared: &Shared, st: &State, sreq: &StreamRequest) -> Result<(), Denied> {
    let ident = acl::resolve(shared.cfg.acl.as_ref(), &shared.identities, &sreq.token)
        .map_err(|()| Denied::UnknownToken)?;
    let ns = sreq.sub.namespace.as_str();
    let read_ns = |ident: &Identity| {
        if ns == "*" {
            st.namespaces.iter().all(|n| ident.can_read(n))
        } else {
            ident.can_read(ns)
        }
    };
    for topic in sreq.sub.topics.keys() {
        let ok = match topic.as_str() {
            "Job" | "Allocation" | "Deployment" | "Evaluation" | "Service" => read_ns(&ident),
            "Node" => ident.can_read_nodes(),
            _ => ident.is_management(),
        };
        if !ok {
            return Err(Denied::Lacking);
        }
    }
    Ok(())
}

/// Serves one event stream on `conn`; returns whether the connection may be reused.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    req: &Request,
    sreq: StreamRequest,
    kill: &mut watch::Receiver<u64>,
) -> bool {
    let mode = shared.cfg.stream_mode;
    let encoding = match mode {
        StreamMode::Chunked => negotiate(req.header("Accept-Encoding")),
        StreamMode::Hijacked => None,
    };
    let mut changed = shared.changed.subscribe();
    let subscribed = {
        let st = shared.lock();
        authorize(shared, &st, &sreq).map(|()| {
            (
                st.broker.start_cursor(sreq.index, st.index),
                st.broker.generation,
            )
        })
    };
    let cut_seen = shared.cut_epoch.load(Ordering::SeqCst);

    if mode == StreamMode::Hijacked {
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\n\r\n";
        if conn.wr.write_all(head.as_bytes()).await.is_err() || subscribed.is_err() {
            return false;
        }
    }
    let (mut cursor, generation) = match subscribed {
        Ok(s) => s,
        Err(denied) => {
            // Chunked mode: the handler already set Content-Type: application/json,
            // so Go's `wrap` sends the plain-text error under that type.
            let status = match denied {
                Denied::UnknownToken => 403,
                Denied::Lacking => shared.cfg.acl_denied_status,
            };
            let resp = Response::empty(status)
                .header("Cache-Control", "no-cache")
                .header("Content-Type", "application/json")
                .with_body(b"Permission denied".to_vec());
            let bytes = resp.to_bytes(encoding, req.keep_alive);
            return conn.wr.write_all(&bytes).await.is_ok();
        }
    };
    let mut body = Body {
        chunked: mode == StreamMode::Chunked,
        compressor: encoding.map(Compressor::new),
        deadline: (mode == StreamMode::Hijacked).then_some(shared.cfg.stream_write_deadline),
    };
    if mode == StreamMode::Chunked {
        let mut head = status_line(200);
        head.push_str("Cache-Control: no-cache\r\nContent-Type: application/json\r\n");
        match encoding {
            Some(Encoding::Gzip) => head.push_str("Content-Encoding: gzip\r\n"),
            Some(Encoding::Deflate) => head.push_str("Content-Encoding: deflate\r\n"),
            None => {}
        }
        head.push_str("Vary: Accept-Encoding\r\n");
        head.push_str(&format!(
            "Date: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            http_date_now()
        ));
        if conn.wr.write_all(head.as_bytes()).await.is_err() {
            return false;
        }
    }
    if body.write_frame(conn, b"{}").await.is_err() {
        return false;
    }
    let hb = shared.cfg.heartbeat.max(Duration::from_millis(1));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + hb, hb);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scratch = [0u8; 4096];

    let end = loop {
        let pending = {
            let st = shared.lock();
            if st.broker.generation != generation {
                Err(StreamEnd::Closed)
            } else {
                st.broker.read_from(cursor)
            }
        };
        let batches = match pending {
            Ok(b) => b,
            Err(e) => break e,
        };
        for batch in batches {
            cursor = batch.index + 1;
            let events = sreq.sub.filter(&batch.events);
            if events.is_empty() {
                continue;
            }
            let frame = frame_json(batch.index, &events);
            if shared.cut_epoch.load(Ordering::SeqCst) > cut_seen {
                body.write_half(conn, &frame).await;
                return false;
            }
            if body.write_frame(conn, &frame).await.is_err() {
                return false;
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return false },
            _ = heartbeat.tick() => {
                if body.write_frame(conn, b"{}").await.is_err() {
                    return false;
                }
            }
            r = conn.rd.read(&mut scratch) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => conn.buf.extend_from_slice(&scratch[..n]),
            },
            _ = kill.changed() => return false,
        }
    };
    match mode {
        // `wrap` appends the error text after the frames already sent.
        StreamMode::Chunked => {
            body.write_piece(conn, end.message().as_bytes())
                .await
                .is_ok()
                && body.finish(conn).await.is_ok()
        }
        StreamMode::Hijacked => false,
    }
}
