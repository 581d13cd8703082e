//! The managed config file (render and read back), the map files, and their durable writes.

use super::error::{Error, Result};
use super::ledger::{OwnedBackend, OwnedBackends, OwnedServer};
use super::state_files;
use crate::plan::model::socket_text;
use crate::vocab::syntax::Token;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The first lines of the managed file.
pub const HEADER: &str = "\
# Managed by haproxy-nomad-connector: rewritten after every applied change, edits are lost.
# HAProxy loads it after the operator's config: haproxy -W -S <master socket> -f <operator config> -f <this file>
";

/// The fixed lines of every managed backend: its servers' states come back
/// from the connector's state files after a reload or restart. `local`
/// reads the file the backend names (its shard, see [`super::state_files`])
/// and leaves any `server-state-file` of the operator's `global` alone.
const LOAD_STATE: &str = "load-server-state-from-file local";
const STATE_FILE_NAME: &str = "server-state-file-name";

/// Renders the managed config file; `state_file` is the validated base path
/// of the state files.
pub fn render(backends: &OwnedBackends, state_file: &Token) -> String {
    let mut text = String::from(HEADER);
    for (name, backend) in backends {
        text.push_str(&section(name, backend, state_file));
    }
    text
}

/// One backend's section of the managed file.
pub fn section(name: &str, backend: &OwnedBackend, state_file: &Token) -> String {
    let mut text = format!("\nbackend {name}\n    {LOAD_STATE}\n");
    let shard = state_files::shard(name);
    text.push_str(&format!("    {STATE_FILE_NAME} {state_file}.{shard:02}\n"));
    for line in &backend.lines {
        text.push_str(&format!("    {line}\n"));
    }
    for (server, s) in &backend.servers {
        let address = socket_text(s.addr, s.port);
        text.push_str(&format!(
            "    server {server} {address} weight {}",
            s.weight
        ));
        if !s.args.is_empty() {
            text.push(' ');
            text.push_str(&s.args);
        }
        text.push('\n');
    }
    text
}

/// Reads a managed file back (the connector's own format only).
///
/// # Errors
/// [`Error::ManagedFileCorrupt`] on a line the connector never writes.
pub fn parse(text: &str, path: &Path) -> Result<OwnedBackends> {
    let mut backends = BTreeMap::new();
    let mut current: Option<(String, OwnedBackend)> = None;
    for (n, raw) in text.lines().enumerate() {
        let corrupt = || Error::ManagedFileCorrupt {
            path: path.into(),
            line: n + 1,
            text: raw.chars().take(120).collect(),
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = raw.strip_prefix("backend ") {
            if let Some((name, backend)) = current.take() {
                backends.insert(name, backend.into());
            }
            current = Some((name.trim().to_string(), OwnedBackend::default()));
            continue;
        }
        let Some((_, backend)) = current.as_mut() else {
            return Err(corrupt());
        };
        if line == LOAD_STATE || line.starts_with(STATE_FILE_NAME) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("server ") {
            let (name, server) = parse_server(rest).ok_or_else(corrupt)?;
            backend.servers.insert(name, server);
        } else {
            backend.lines.push(line.to_string());
        }
    }
    if let Some((name, backend)) = current {
        backends.insert(name, backend.into());
    }
    Ok(backends)
}

/// `NAME ADDR:PORT weight W [ARGS…]`.
fn parse_server(rest: &str) -> Option<(String, OwnedServer)> {
    let mut words = rest.splitn(5, ' ');
    let name = words.next()?.to_string();
    let (addr, port) = words.next()?.rsplit_once(':')?;
    let addr: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    if words.next()? != "weight" {
        return None;
    }
    let weight = words.next()?.parse().ok()?;
    let server = OwnedServer {
        addr,
        port: port.parse().ok()?,
        weight,
        args: words.next().unwrap_or("").to_string(),
    };
    Some((name, server))
}

/// Reads a map file the driver wrote (`key value` per line) into `set`.
pub fn parse_map(text: &str, mut set: impl FnMut(&str, &str)) {
    for line in text.lines() {
        if let Some((key, value)) = line.trim().split_once(' ')
            && !key.starts_with('#')
        {
            set(key, value.trim());
        }
    }
}

/// `dir/.name.suffix`: a sibling that a config directory does not load
/// (HAProxy reads only `*.cfg` from a directory).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// Writes a managed file atomically and durably ([`crate::durable::write`]):
/// on any error the old file stays.
///
/// # Errors
/// [`Error::WriteFailed`] naming the file and the cause.
pub async fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    crate::durable::write_async(path, contents.as_bytes().to_vec())
        .await
        .map_err(|source| Error::WriteFailed {
            path: path.into(),
            source,
        })
}

/// Renames a file written with [`write_atomic`] over `to`, durably.
///
/// # Errors
/// [`Error::WriteFailed`] naming `to` and the cause.
pub async fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    crate::durable::rename_async(from, to)
        .await
        .map_err(|source| Error::WriteFailed {
            path: to.into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> OwnedBackends {
        let backend = OwnedBackend::test(
            &[
                "mode http",
                "balance roundrobin",
                "option httpchk",
                "http-check send meth GET uri /health ver HTTP/1.1 hdr Host 'a b'",
            ],
            "",
        );
        BTreeMap::from([
            ("default_web".into(), backend.into()),
            ("default_empty".into(), OwnedBackend::default().into()),
        ])
    }

    #[test]
    fn render_reads_back_identically() {
        let state = Token::restricted("state", "/var/lib/h.state", "/._", 100).unwrap();
        let text = render(&owned(), &state);
        let shard = state_files::shard("default_web");
        assert!(text.contains(&format!(
            "\nbackend default_web\n    load-server-state-from-file local\n    server-state-file-name /var/lib/h.state.{shard:02}\n    mode http\n"
        )));
        assert!(text.contains("    server _nomad-a 10.0.0.1:8080 weight 10 check inter 500ms\n"));
        assert!(text.contains("    server _nomad-b [::1]:8080 weight 10\n"));
        assert_eq!(parse(&text, Path::new("m.cfg")).unwrap(), owned());
    }

    #[test]
    fn map_files_read_back() {
        let mut got = Vec::new();
        parse_map("a 10.0.0.1:80\n\nb /ready?x=1\n# c d\n", |k, v| {
            got.push((k.to_string(), v.to_string()))
        });
        assert_eq!(
            got,
            [
                ("a".to_string(), "10.0.0.1:80".to_string()),
                ("b".to_string(), "/ready?x=1".to_string())
            ]
        );
    }

    #[test]
    fn foreign_lines_are_refused_with_their_line() {
        let err = parse("global\n    daemon\n", Path::new("m.cfg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.cfg:1: not a line the connector writes: \"global\""
        );
        let err = parse("backend b\n    server x nowhere\n", Path::new("m.cfg")).unwrap_err();
        assert!(err.to_string().contains("m.cfg:2"), "{err}");
    }
}
