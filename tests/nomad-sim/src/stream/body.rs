//! The stream's response body: chunked or raw, each Go flush as one piece,
//! optional gzip/deflate with a sync flush per piece, half-frame cuts.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use tokio::io::AsyncWriteExt;

use crate::http::response::Encoding;
use crate::http::server::Conn;

/// Compression state of a pre-1.11.2 stream (gorilla flushes per write).
pub(super) enum Compressor {
    Gzip(GzEncoder<Vec<u8>>),
    Deflate(DeflateEncoder<Vec<u8>>),
}

impl Compressor {
    pub(super) fn new(enc: Encoding) -> Self {
        match enc {
            Encoding::Gzip => Compressor::Gzip(GzEncoder::new(Vec::new(), Compression::default())),
            Encoding::Deflate => {
                Compressor::Deflate(DeflateEncoder::new(Vec::new(), Compression::default()))
            }
        }
    }

    /// Compresses and sync-flushes, returning the bytes produced.
    fn push(&mut self, data: &[u8]) -> Vec<u8> {
        let res = match self {
            Compressor::Gzip(e) => e.write_all(data).and_then(|()| e.flush()),
            Compressor::Deflate(e) => e.write_all(data).and_then(|()| e.flush()),
        };
        if res.is_err() {
            return Vec::new();
        }
        match self {
            Compressor::Gzip(e) => std::mem::take(e.get_mut()),
            Compressor::Deflate(e) => std::mem::take(e.get_mut()),
        }
    }

    /// Ends the compressed stream (gzip trailer).
    fn finish(&mut self) -> Vec<u8> {
        let res = match self {
            Compressor::Gzip(e) => e.try_finish(),
            Compressor::Deflate(e) => e.try_finish(),
        };
        if res.is_err() {
            return Vec::new();
        }
        match self {
            Compressor::Gzip(e) => std::mem::take(e.get_mut()),
            Compressor::Deflate(e) => std::mem::take(e.get_mut()),
        }
    }
}

/// The response body writer for one stream.
pub(super) struct Body {
    pub chunked: bool,
    pub compressor: Option<Compressor>,
    pub deadline: Option<Duration>,
}

impl Body {
    async fn send(&mut self, conn: &mut Conn, bytes: &[u8]) -> std::io::Result<()> {
        match self.deadline {
            Some(d) => match tokio::time::timeout(d, conn.wr.write_all(bytes)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            },
            None => conn.wr.write_all(bytes).await,
        }
    }

    /// One flushed write of the Go handler (one chunk when chunked).
    pub(super) async fn write_piece(
        &mut self,
        conn: &mut Conn,
        data: &[u8],
    ) -> std::io::Result<()> {
        let data = match self.compressor.as_mut() {
            Some(c) => c.push(data),
            None => data.to_vec(),
        };
        if data.is_empty() {
            return Ok(());
        }
        if self.chunked {
            let mut out = format!("{:x}\r\n", data.len()).into_bytes();
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
            self.send(conn, &out).await
        } else {
            self.send(conn, &data).await
        }
    }

    /// A frame: the JSON, then `\n`, as two flushed writes.
    pub(super) async fn write_frame(
        &mut self,
        conn: &mut Conn,
        frame: &[u8],
    ) -> std::io::Result<()> {
        self.write_piece(conn, frame).await?;
        self.write_piece(conn, b"\n").await
    }

    /// Half of a frame (for chunked: a chunk header promising all of it).
    pub(super) async fn write_half(&mut self, conn: &mut Conn, frame: &[u8]) {
        let data = match self.compressor.as_mut() {
            Some(c) => c.push(frame),
            None => frame.to_vec(),
        };
        let half = &data[..data.len() / 2];
        let mut out = Vec::new();
        if self.chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        out.extend_from_slice(half);
        let _ = self.send(conn, &out).await;
        let _ = conn.wr.flush().await;
    }

    /// Ends a chunked body cleanly.
    pub(super) async fn finish(&mut self, conn: &mut Conn) -> std::io::Result<()> {
        if let Some(c) = self.compressor.as_mut() {
            let tail = c.finish();
            if !tail.is_empty() {
                let mut out = format!("{:x}\r\n", tail.len()).into_bytes();
                out.extend_from_slice(&tail);
                out.extend_from_slice(b"\r\n");
                self.send(conn, &out).await?;
            }
        }
        self.send(conn, b"0\r\n\r\n").await
    }
}
