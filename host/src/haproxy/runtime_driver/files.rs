//! The runtime driver's writes of its files, recorded for metrics and `/readyz`.

use super::{RETRY_FAILED, RuntimeDriver};
use crate::haproxy::driver::ApplyReport;
use crate::haproxy::error::{Error, Result};
use crate::haproxy::managed_file::{rename_durably, write_atomic};
use std::path::Path;

/// Lets an apply whose changes reached HAProxy succeed when only its files
/// could not be written: the failure is already logged, counted and listed
/// for `/readyz` ([`RuntimeDriver::record_write`]); the write is retried
/// soon. Other errors pass.
///
/// # Errors
/// Any error but [`Error::WriteFailed`].
pub(super) fn tolerate(result: Result<()>, report: &mut ApplyReport) -> Result<()> {
    match result {
        Err(Error::WriteFailed { .. }) => {
            report.requeue(RETRY_FAILED);
            Ok(())
        }
        other => other,
    }
}

impl RuntimeDriver {
    /// Writes one of the connector's files durably ([`write_atomic`]) and
    /// records the outcome ([`RuntimeDriver::record_write`]); `kind` is the
    /// metric's `file` label.
    ///
    /// # Errors
    /// [`Error::WriteFailed`]: the old file stays.
    pub(super) async fn write(&self, kind: &'static str, path: &Path, text: &str) -> Result<()> {
        let result = write_atomic(path, text).await;
        self.record_write(kind, path, result)
    }

    /// Renames a written candidate over the managed config, durably, and
    /// records the outcome as a write of the managed config.
    ///
    /// # Errors
    /// [`Error::WriteFailed`]: the old managed config stays.
    pub(super) async fn install(&self, candidate: &Path, managed: &Path) -> Result<()> {
        let result = rename_durably(candidate, managed).await;
        self.record_write("config", managed, result)
    }

    /// Records a write: a failure is logged as an ERROR naming the file and
    /// the cause, counted, and listed in [`super::Snapshot::unwritten`]
    /// (which makes `/readyz` fail) until a write of that file succeeds.
    pub(super) fn record_write(
        &self,
        kind: &'static str,
        path: &Path,
        result: Result<()>,
    ) -> Result<()> {
        match &result {
            Ok(()) => self.stats.update(|s| {
                s.unwritten.remove(path);
            }),
            Err(e) => {
                let cause = match e {
                    Error::WriteFailed { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                tracing::error!(
                    file = %path.display(),
                    error = %cause,
                    "cannot write a file the connector owns; the old one stays, retrying"
                );
                self.stats.update(|s| {
                    *s.writes_failed.entry(kind).or_default() += 1;
                    s.unwritten.insert(path.into(), cause);
                });
            }
        }
        result
    }
}
