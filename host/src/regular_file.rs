//! Reading a file that must be a regular one (a config, a plugin) without
//! blocking on anything else: a plain read of a FIFO waits until something
//! writes to it, which would stop the daemon's loop on a reload.

use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The bytes of `path`; an error, at once, if it is not a regular file.
///
/// # Errors
/// The file cannot be opened or read, or it is a FIFO, a device, a socket
/// or a directory.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    // Opening a FIFO for reading blocks until a writer opens it, unless
    // non-blocking; a regular file reads the same either way.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file (a {})", describe(kind)),
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The bytes of `path` as UTF-8 text.
///
/// # Errors
/// As [`read`], or the bytes are not UTF-8.
pub fn read_to_string(path: &Path) -> Result<String, Error> {
    String::from_utf8(read(path)?).map_err(|e| Error::new(ErrorKind::InvalidData, e))
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_and_a_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plugin.wasm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let err = read(&fifo).unwrap_err();
        assert_eq!(err.to_string(), "not a regular file (a FIFO)");
        assert!(
            read(dir.path())
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
        assert!(
            read(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string()
                .contains("device")
        );
        let file = dir.path().join("ok.toml");
        std::fs::write(&file, "a = 1\n").unwrap();
        assert_eq!(read_to_string(&file).unwrap(), "a = 1\n");
    }
}
