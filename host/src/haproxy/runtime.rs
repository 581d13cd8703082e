//! Socket I/O with HAProxy's stats and master sockets; nothing else.

use super::commands::{frame, split_replies};
use super::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One of HAProxy's UNIX sockets.
#[derive(Debug, Clone)]
pub struct Socket {
    path: PathBuf,
    timeout: Duration,
}

impl Socket {
    /// A socket at `path`, with a time limit per exchange.
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> Socket {
        Socket {
            path: path.into(),
            timeout,
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one command and returns the whole answer (HAProxy closes the
    /// connection after it).
    ///
    /// # Errors
    /// The socket cannot be reached, breaks, or exceeds the time limit.
    pub async fn send(&self, command: &str) -> Result<String> {
        self.send_within(command, self.timeout).await
    }

    /// [`Socket::send`] with its own time limit (the master's `reload`
    /// answers only once the new worker has loaded, or failed to).
    ///
    /// # Errors
    /// As [`Socket::send`], with `limit` as the time limit.
    pub async fn send_within(&self, command: &str, limit: Duration) -> Result<String> {
        self.exchange(&format!("{command}\n"), limit).await
    }

    /// Sends many commands on one connection in `prompt` mode and returns
    /// one reply per command; fewer when HAProxy ended the connection early.
    ///
    /// # Errors
    /// The socket cannot be reached, breaks, or exceeds the time limit
    /// (plus 1 ms per command).
    pub async fn batch(&self, commands: &[&str]) -> Result<Vec<String>> {
        self.batch_holding(commands, Duration::ZERO).await
    }

    /// [`Socket::batch`] of commands that HAProxy may hold for up to
    /// `held` in all (`wait …`): the time limit grows by that much.
    ///
    /// # Errors
    /// As [`Socket::batch`].
    pub async fn batch_holding(&self, commands: &[&str], held: Duration) -> Result<Vec<String>> {
        let limit = self.timeout + held + Duration::from_millis(commands.len() as u64);
        let output = self
            .exchange(&frame(commands.iter().copied()), limit)
            .await?;
        Ok(split_replies(&output, commands.len()))
    }

    /// Writes `input` while reading the answer to its end: HAProxy stops
    /// reading when its output buffer is full, so a large batch must be
    /// read as it is written.
    async fn exchange(&self, input: &str, limit: Duration) -> Result<String> {
        let failed = |source| Error::SocketFailed {
            path: self.path.clone(),
            source,
        };
        let work = async {
            let stream = UnixStream::connect(&self.path).await.map_err(failed)?;
            let (mut reader, mut writer) = stream.into_split();
            // Half-closing after the input ends the session: the master
            // socket waits for more commands until it sees the end.
            let write = async {
                writer.write_all(input.as_bytes()).await?;
                writer.shutdown().await
            };
            let mut output = Vec::new();
            let read = reader.read_to_end(&mut output);
            let (written, read) = tokio::join!(write, read);
            // A write error after HAProxy closed the connection is not a
            // failure as long as the answer came in full.
            read.map_err(failed)?;
            if let Err(e) = written
                && output.is_empty()
            {
                return Err(failed(e));
            }
            Ok(String::from_utf8_lossy(&output).into_owned())
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::SocketTimedOut {
                path: self.path.clone(),
                after: limit,
            })?
    }
}
