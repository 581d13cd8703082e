//! Logging setup: `tracing` to stderr as text or JSON lines, filtered by the
//! `[log]` config unless `RUST_LOG` says otherwise.

use serde::Deserialize;
use std::io::{IsTerminal, Write};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The environment variable that overrides the configured filter.
pub const ENV_FILTER: &str = "RUST_LOG";

/// Logging cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filter does not parse (`info`, `warn,haproxy_nomad_connector=debug`, …).
    #[error("{origin}: invalid log filter {filter:?}")]
    BadFilter {
        /// Where it came from: `RUST_LOG` or `[log] level`.
        origin: &'static str,
        /// The filter as given.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed (`init` called twice).
    #[error("logging is already set up")]
    AlreadySet(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One human-readable line per event (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level beside
    /// `timestamp`, `level`, `target` and the spans: for Loki, Elasticsearch
    /// or `journalctl -o cat | jq`.
    Json,
}

/// `[log]`: how the daemon logs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `text` or `json`. Default `text`: easy to read in `journalctl`; use
    /// `json` when a log pipeline parses the fields.
    pub format: Format,
    /// A `tracing` filter: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`) or directives such as `info,haproxy_nomad_connector::nomad=debug`.
    /// Default `info`: start-up, reloads, fallbacks (once per cause) and
    /// failures; `debug` adds every event and command. `RUST_LOG`, when set
    /// and not empty, replaces it.
    pub level: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            format: Format::Text,
            level: "info".to_string(),
        }
    }
}

impl Config {
    /// Checks that `level` parses, for config validation at load.
    ///
    /// # Errors
    /// [`Error::BadFilter`].
    pub fn validate(&self) -> Result<(), Error> {
        filter(&self.level, None).map(drop)
    }

    /// Installs the global subscriber these settings describe ([`init`]).
    ///
    /// # Errors
    /// As [`init`].
    pub fn init(&self) -> Result<(), Error> {
        init(self.format, &self.level)
    }
}

/// Installs the global `tracing` subscriber: `format` lines to stderr,
/// filtered by `RUST_LOG` if it is set and not empty, else by `configured`.
///
/// # Errors
/// A filter that does not parse (the error names `RUST_LOG` or the config
/// key), or a subscriber already installed.
pub fn init(format: Format, configured: &str) -> Result<(), Error> {
    let from_env = std::env::var(ENV_FILTER).ok();
    let filter = filter(configured, from_env.as_deref())?;
    let ansi = std::io::stderr().is_terminal();
    tracing::subscriber::set_global_default(subscriber(format, filter, ansi, std::io::stderr))
        .map_err(|e| Error::AlreadySet(Box::new(e)))
}

/// The filter: `env` when set and not empty, else `configured`.
fn filter(configured: &str, env: Option<&str>) -> Result<EnvFilter, Error> {
    let (origin, text) = match env.map(str::trim).filter(|e| !e.is_empty()) {
        Some(env) => (ENV_FILTER, env),
        None => ("[log] level", configured.trim()),
    };
    EnvFilter::try_new(text).map_err(|source| Error::BadFilter {
        origin,
        filter: text.to_string(),
        source,
    })
}

/// A subscriber writing `format` lines to `writer`.
fn subscriber<W>(
    format: Format,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        Format::Text => Box::new(
            builder
                .with_writer(OneLines {
                    inner: writer,
                    ansi,
                })
                .with_ansi(ansi)
                .finish(),
        ),
        // JSON escapes every control character in strings by itself.
        Format::Json => Box::new(
            builder
                .with_writer(writer)
                .json()
                .flatten_event(true)
                .finish(),
        ),
    }
}

/// Makes [`OneLine`] writers: every text event stays one line, whatever
/// text from outside (Nomad bodies, tags, plugin warnings) a message or a
/// field holds. `tracing-subscriber` escapes `ESC` in them, not newlines or
/// carriage returns.
struct OneLines<M> {
    inner: M,
    /// Colours on: the formatter's own `ESC`s are kept.
    ansi: bool,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLines<M> {
    type Writer = OneLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(self.inner.make_writer(), self.ansi)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        OneLine(self.inner.make_writer_for(meta), self.ansi)
    }
}

/// Receives one formatted event per `write` (the fmt layer formats into a
/// buffer, then writes it whole) and escapes the control characters before
/// its final newline; `ESC` too unless colours are on.
struct OneLine<W>(W, bool);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end): (&[u8], &[u8]) = match buf.split_last() {
            Some((b'\n', body)) => (body, b"\n"),
            _ => (buf, b""),
        };
        let ansi = self.1;
        let unsafe_byte = |b: u8| (b < 0x20 && !(ansi && b == 0x1b)) || b == 0x7f;
        if !body.iter().copied().any(unsafe_byte) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b if unsafe_byte(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(format: Format, level: &str, log: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let out = buf.clone();
        let sub = subscriber(format, filter(level, None).unwrap(), false, move || {
            out.clone()
        });
        tracing::subscriber::with_default(sub, log);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_log_section_defaults_to_text_at_info_and_refuses_unknown_keys() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!((c.format, c.level.as_str()), (Format::Text, "info"));
        let c: Config = toml::from_str("format = \"json\"\nlevel = \"debug\"").unwrap();
        assert_eq!(c.format, Format::Json);
        assert!(toml::from_str::<Config>("levle = \"debug\"").is_err());
        assert!(toml::from_str::<Config>("format = \"xml\"").is_err());
    }

    #[test]
    fn rust_log_overrides_the_configured_filter_unless_empty() {
        assert_eq!(filter("info", Some("debug")).unwrap().to_string(), "debug");
        assert_eq!(filter("info", Some("  ")).unwrap().to_string(), "info");
        assert_eq!(filter("warn", None).unwrap().to_string(), "warn");
    }

    #[test]
    fn a_bad_filter_names_where_it_came_from() {
        let bad = "info,haproxy_nomad_connector=loud";
        let err = filter("info", Some(bad)).unwrap_err();
        assert!(
            err.to_string().starts_with("RUST_LOG: invalid log filter"),
            "{err}"
        );
        let config = Config {
            level: bad.into(),
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[log] level: invalid log filter"),
            "{err}"
        );
    }

    #[test]
    fn json_lines_carry_the_fields_at_the_top_level() {
        let out = capture(Format::Json, "info", || {
            tracing::info!(service = "web", cause = "no-check", "falling back to TCP");
            tracing::debug!("filtered out");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "falling back to TCP");
        assert_eq!(v["service"], "web");
        assert_eq!(v["cause"], "no-check");
    }

    /// Text from outside, as a test feeds it: control characters, newlines,
    /// ANSI escapes and Unicode separators among ordinary characters.
    fn hostile() -> impl Strategy<Value = String> {
        "(\\PC|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}\\u{2029}]|\\x1b\\[2J|\\r\\n)*"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn one_event_is_one_line_whatever_its_text(text in hostile(), field in hostile()) {
            for format in [Format::Text, Format::Json] {
                let out = capture(format, "info", || {
                    tracing::warn!(service = %field, body = ?field, "nomad said: {text}");
                    tracing::info!(warning = %text, "second");
                });
                let lines: Vec<&str> = out.split('\n').collect();
                prop_assert_eq!(lines.len(), 3, "{:?}: {:?}", format, out);
                prop_assert!(lines[2].is_empty());
                prop_assert!(!out.contains('\r') && !out.contains('\u{1b}'), "{:?}", out);
                if format == Format::Json {
                    for line in &lines[..2] {
                        let v: serde_json::Value = serde_json::from_str(line).unwrap();
                        prop_assert!(v["message"].is_string());
                    }
                }
            }
        }
    }

    #[test]
    fn text_lines_are_plain_without_a_terminal() {
        let out = capture(Format::Text, "warn", || {
            tracing::warn!(scope = "*", "nomad watch failed");
            tracing::info!("filtered out");
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("WARN"));
        assert!(out.contains("nomad watch failed scope=\"*\""));
        assert!(!out.contains('\u{1b}'));
    }
}
