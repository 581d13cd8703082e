//! Socket I/O with HAProxy's stats and master sockets; nothing else.

use super::commands::{MAX_REQUEST, frame, requests, split_replies};
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
        self.exchange(&format!("{command}\n"), limit, true).await
    }

    /// Sends many commands in `prompt` mode and returns one reply per
    /// command; fewer when HAProxy ended a connection early.
    ///
    /// # Errors
    /// As [`Socket::batch_holding`].
    pub async fn batch(&self, commands: &[&str]) -> Result<Vec<String>> {
        let held: Vec<(&str, Duration)> = commands.iter().map(|c| (*c, Duration::ZERO)).collect();
        self.batch_holding(&held).await
    }

    /// Sends commands, each with how long HAProxy may hold it (`wait …`),
    /// in `prompt` mode, one reply per command. They go in order over as
    /// many connections as [`MAX_REQUEST`] needs, one after the other;
    /// each connection's input ends with `quit` and is never half-closed:
    /// 2.6 and 3.0 drop the commands they have not read yet when the
    /// client shuts its side first. A connection that breaks after earlier
    /// ones were answered ends the batch: the replies so far come back,
    /// and the commands after them have none.
    ///
    /// # Errors
    /// The socket cannot be reached, or the first connection breaks or
    /// exceeds the time limit (plus what its commands may hold, plus 1 ms
    /// per command).
    pub async fn batch_holding(&self, commands: &[(&str, Duration)]) -> Result<Vec<String>> {
        let texts: Vec<&str> = commands.iter().map(|(text, _)| *text).collect();
        let mut replies = Vec::with_capacity(commands.len());
        for run in requests(&texts, MAX_REQUEST) {
            let mine = &texts[run.clone()];
            let held: Duration = commands[run].iter().map(|(_, held)| *held).sum();
            let limit = self.timeout + held + Duration::from_millis(mine.len() as u64);
            let output = match self
                .exchange(&frame(mine.iter().copied()), limit, false)
                .await
            {
                Ok(output) => output,
                Err(e) if replies.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, answered = replies.len(), unanswered = texts.len() - replies.len(), "haproxy stats socket broke during a batch");
                    break;
                }
            };
            let answered = split_replies(&output, mine.len());
            let complete = answered.len() == mine.len();
            replies.extend(answered);
            if !complete {
                break;
            }
        }
        Ok(replies)
    }

    /// Writes `input` while reading the answer to its end: HAProxy stops
    /// reading when its output buffer is full, so a large batch must be
    /// read as it is written. `half_close` shuts the writing side after
    /// the input: the master socket waits for more commands until it sees
    /// that, while the stats socket in `prompt` mode ends at `quit`.
    async fn exchange(&self, input: &str, limit: Duration, half_close: bool) -> Result<String> {
        let failed = |source| Error::SocketFailed {
            path: self.path.clone(),
            source,
        };
        let work = async {
            let stream = UnixStream::connect(&self.path).await.map_err(failed)?;
            let (mut reader, mut writer) = stream.into_split();
            let write = async {
                writer.write_all(input.as_bytes()).await?;
                match half_close {
                    true => writer.shutdown().await,
                    false => Ok(()),
                }
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
