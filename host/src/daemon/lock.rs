//! One connector per HAProxy: an exclusive `flock` on a lock file beside the managed config.
//!
//! Two connectors on one HAProxy undo each other's work: each takes the
//! other's backends for the operator's, and with different views of Nomad
//! servers flap on every resync. The daemon takes this lock before it
//! touches HAProxy and holds it until it exits (the kernel releases it when
//! the process dies, however it dies). The file holds the holder's PID, so
//! that a second connector can say which process to look at.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the lock: another connector drives this HAProxy.
    #[error(
        "another connector already drives this HAProxy: {holder} holds the lock {path}; \
         stop it first (or give each connector its own HAProxy)"
    )]
    HeldByOther {
        /// The lock file.
        path: PathBuf,
        /// `PID n`, or why the PID is unknown.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    LockFailed {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// The lock file for the managed config `managed`: `.NAME.lock` beside it.
    pub fn path_for(managed: &Path) -> PathBuf {
        crate::haproxy::managed_file::sibling(managed, "lock")
    }

    /// Takes the lock at `path` without waiting, and writes this process's
    /// PID into it.
    ///
    /// # Errors
    /// [`Error::HeldByOther`] naming the holder's PID when another process
    /// holds it; [`Error::LockFailed`] when the file cannot be opened
    /// (a missing directory, no permission, a symlink planted at its name).
    pub fn acquire(path: &Path) -> Result<Lock, Error> {
        let failed = |source| Error::LockFailed {
            path: path.into(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::HeldByOther {
                    path: path.into(),
                    holder: holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        file.set_len(0).map_err(failed)?;
        file.rewind().map_err(failed)?;
        writeln!(file, "{}", std::process::id()).map_err(failed)?;
        Ok(Lock {
            _file: file,
            path: path.into(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `PID n` from the lock file's contents (the holder writes it just after
/// it locks, so it can be missing for a moment).
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("PID {pid}"),
        Err(_) => "a process that has not written its PID yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = Lock::path_for(&dir.path().join("nomad-connector.cfg"));
        assert_eq!(path, dir.path().join(".nomad-connector.cfg.lock"));
        let first = Lock::acquire(&path).unwrap();
        let pid = std::process::id();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
        let err = Lock::acquire(&path).unwrap_err();
        assert!(matches!(&err, Error::HeldByOther { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("PID {pid} holds the lock")),
            "{err}"
        );
        drop(first);
        let again = Lock::acquire(&path).unwrap();
        assert_eq!(again.path(), path);
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join(".m.cfg.lock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = Lock::acquire(&path).unwrap_err();
        assert!(matches!(err, Error::LockFailed { .. }), "{err:?}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }
}
