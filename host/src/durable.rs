//! Durable, atomic file writes: the one writer of every file the connector owns.
//!
//! The managed config, its candidate, the maps, the server-state shards and
//! the compiled-plugin cache all go through [`write`]. A full disk, a quota
//! or an I/O error must never leave a truncated file where HAProxy reads
//! it: tokio's `File::sync_all` drops a write error still buffered, which
//! once renamed an 8 KiB prefix of the managed config over the whole file.
//! Here every step is synchronous and checked, and the old file stays until
//! the new one is complete on disk.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a new file (before the umask): HAProxy, which may run as
/// another user than the connector, must read it.
const NEW_FILE_MODE: u32 = 0o644;

/// Replaces `path` with `bytes`, atomically and durably.
///
/// The bytes go to a temporary sibling with a random name, created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted file or symlink is never
/// opened, let alone followed), written, flushed and fsynced; its length is
/// checked; it is renamed over `path`, and the directory is fsynced so that
/// the rename survives a crash. An existing file's permission bits carry
/// over to the new one.
///
/// # Errors
/// Any failed step (no space, quota, permission, read-only file system, a
/// short file), with the OS's cause. `path` then still holds its old
/// contents (or does not exist), and the temporary file is removed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mode = match std::fs::metadata(path) {
        Ok(old) => Some(old.permissions().mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .make_in(dir, |candidate| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(mode.unwrap_or(NEW_FILE_MODE))
                .open(candidate)
        })?;
    let file = tmp.as_file_mut();
    if let Some(mode) = mode {
        // Exactly the old bits, whatever the umask.
        file.set_permissions(Permissions::from_mode(mode))?;
    }
    file.write_all(bytes)?;
    file.flush()?;
    file.sync_all()?;
    let written = file.metadata()?.len();
    if written != bytes.len() as u64 {
        return Err(io::Error::other(format!(
            "the new file has {written} of {} bytes",
            bytes.len()
        )));
    }
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Renames `from` over `to` (in one file system) and fsyncs the directory,
/// so that the rename survives a crash.
///
/// # Errors
/// The rename or the directory's fsync failed.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(parent(to))
}

/// [`write`] on tokio's blocking pool.
///
/// # Errors
/// As [`write`].
pub async fn write_async(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write(&path, &bytes))
        .await
        .map_err(io::Error::other)?
}

/// [`rename`] on tokio's blocking pool.
///
/// # Errors
/// As [`rename`].
pub async fn rename_async(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || rename(&from, &to))
        .await
        .map_err(io::Error::other)?
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("managed.cfg");
        write(&path, b"backend a\n").unwrap();
        write(&path, b"backend b\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"backend b\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["managed.cfg"]);
    }

    #[test]
    fn write_keeps_the_mode_of_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.map");
        std::fs::write(&path, "a b\n").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write(&path, b"c d\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("managed.cfg");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write(&path, b"backend a\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"backend a\n");
    }

    #[test]
    fn a_failed_write_names_the_cause_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("managed.cfg");
        let err = write(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        // A directory in the way: the rename fails, the temporary file goes.
        let path = dir.path().join("managed.cfg");
        std::fs::create_dir(&path).unwrap();
        let err = write(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("Is a directory"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["managed.cfg"]);
    }
}
