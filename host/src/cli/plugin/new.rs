//! `plugin new NAME [--types http,grpc] [--dir DIR]`: a standalone Cargo
//! project for a mapping plugin, with the SDK, the model crate and the WIT
//! vendored from this binary, fixtures of what the built-ins give, and a
//! README with the loop.

use super::check::{self, CheckPreview};
use super::{Out, say, vendor};
use anyhow::{Context as _, bail};
use haproxy_nomad_connector::mapping::{self, Engine, sample};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The built-in mappings a new plugin can start from.
const BUILTIN_TYPES: &[&str] = &["http", "tcp", "grpc", "script"];

/// `plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name (its Cargo package): a letter, then letters,
    /// digits, `-` or `_`.
    name: String,
    /// The Nomad check types it maps, comma-separated. `http`, `tcp`,
    /// `grpc` and `script` start from the built-in mapping; any other
    /// type starts from a TCP check.
    #[arg(long, value_delimiter = ',', default_value = "http")]
    types: Vec<String>,
    /// Where to write the project: a directory that does not exist or is
    /// empty (default: `./NAME`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `plugin new`.
pub(super) fn run(args: &NewArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    check_name(&args.name)?;
    let mut types: Vec<String> = Vec::new();
    for t in &args.types {
        let t = t.trim();
        check_type_name(t)?;
        if !types.iter().any(|known| known == t) {
            types.push(t.to_string());
        }
    }
    if types.is_empty() {
        bail!("--types names no check type");
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    refuse_non_empty(&dir)?;
    let files = project_files(&args.name, &types)?;
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    say!(
        out,
        "wrote plugin project {} ({} files) in {}",
        args.name,
        files.len(),
        dir.display()
    );
    say!(out, "next:");
    say!(out, "  cd {}", dir.display());
    say!(
        out,
        "  haproxy-nomad-connector plugin test .    # builds, then runs fixtures/"
    );
    say!(
        out,
        "  haproxy-nomad-connector plugin check target/plugin/{}.wasm",
        args.name
    );
    say!(out, "(README.md has the whole loop and the config)");
    Ok(ExitCode::SUCCESS)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !valid {
        bail!(
            "plugin name {:?} is not a Cargo package name: a letter, then letters, digits, '-' or '_' (64 at most)",
            name.escape_debug().to_string()
        );
    }
    Ok(())
}

fn check_type_name(check_type: &str) -> anyhow::Result<()> {
    let valid = !check_type.is_empty()
        && check_type.len() <= 64
        && check_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "check type {:?} is not a Nomad check type: lower-case letters, digits, '-' or '_'",
            check_type.escape_debug().to_string()
        );
    }
    Ok(())
}

/// A directory that exists and holds anything is never written into.
fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty: plugin new writes only into a new or empty directory (give another --dir)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} exists and is not a directory", dir.display())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Every file of the project: (path relative to it, text).
fn project_files(name: &str, types: &[String]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = vec![
        (PathBuf::from("Cargo.toml"), manifest(name)),
        (PathBuf::from("src/lib.rs"), lib_rs(name, types)),
        (PathBuf::from("README.md"), readme(name, types)),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
    ];
    // The engine's warnings (a fallback the fixtures expect) are not news.
    let fixtures =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            fixtures(types)
        })?;
    files.extend(fixtures);
    files.extend(vendor::files());
    Ok(files)
}

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
hnc-plugin-sdk = {{ path = "{sdk}" }}

# Plugins are small and called often: optimise, and abort on panic (the
# connector sees a trap; the SDK logs the panic's message first).
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
strip = true
panic = "abort"
debug = false

# A workspace of its own, wherever the project is put.
[workspace]
"#,
        sdk = vendor::SDK_DIR
    )
}

fn lib_rs(name: &str, types: &[String]) -> String {
    let list = types
        .iter()
        .map(|t| format!("{t:?}.into()"))
        .collect::<Vec<_>>()
        .join(", ");
    let arms = types
        .iter()
        .map(|t| {
            if BUILTIN_TYPES.contains(&t.as_str()) {
                format!("            {t:?} => builtin::{t}::map(&service, &check, &settings),")
            } else {
                format!(
                    "            // A TCP connect check with the check's timing, to start from.\n            {t:?} => builtin::tcp::map(&service, &check, &settings),"
                )
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    include_str!("template/lib.rs.in")
        .replace("{{types_list}}", &list)
        .replace("{{arms}}", &arms)
        .replace("{{name}}", name)
}

fn readme(name: &str, types: &[String]) -> String {
    let routes = types
        .iter()
        .map(|t| format!("   {t} = \"/etc/haproxy-nomad-connector/plugins/{name}.wasm\""))
        .collect::<Vec<_>>()
        .join("\n");
    include_str!("template/README.md.in")
        .replace("{{config_routes}}", &routes)
        .replace("{{types_words}}", &types.join(", "))
        .replace("{{first_type}}", &types[0])
        .replace("{{name}}", name)
}

/// One fixture per type, expecting what the built-in the new plugin starts
/// from gives through the connector (so they pass until the plugin is
/// changed), and for `http` one that falls back.
fn fixtures(types: &[String]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut config = mapping::Config::default();
    for t in types {
        if !BUILTIN_TYPES.contains(&t.as_str()) {
            config.plugins.insert(t.clone(), "tcp".into());
        }
    }
    let render = haproxy_nomad_connector::config::Config::default().render_context();
    let engine = Engine::new(&config, render).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut files = Vec::new();
    for t in types {
        let mut check = serde_json::json!({
            "Name": "alive",
            "Type": t,
            "Interval": 10_000_000_000_u64,
            "Timeout": 2_000_000_000_u64,
        });
        if t == "http" {
            check["Path"] = "/health".into();
        }
        let outcome = map_sample(&engine, &check)?;
        let mut expect = serde_json::json!({ "lines": outcome.lines });
        if let Some(reason) = &outcome.fallback {
            bail!("the {t} fixture falls back ({reason})");
        }
        let description =
            format!("a check of type {t} every 10 s with a 2 s timeout, as a job spec declares it");
        files.push(fixture_file(
            &format!("{t}.json"),
            &description,
            &check,
            &mut expect,
        ));
        if t == "http" {
            let check = serde_json::json!({
                "Name": "absolute",
                "Type": "http",
                "Path": "http://elsewhere.example/health",
                "Interval": 10_000_000_000_u64,
            });
            let outcome = map_sample(&engine, &check)?;
            let Some(reason) = outcome.fallback else {
                bail!("the absolute-path fixture does not fall back");
            };
            let wanted = if reason.contains("must be relative") {
                "must be relative".to_string()
            } else {
                reason
            };
            let mut expect = serde_json::json!({ "fallback": wanted, "lines": outcome.lines });
            files.push(fixture_file(
                "http-absolute-path.json",
                "a check path must be relative to the instance: the check falls back to TCP",
                &check,
                &mut expect,
            ));
        }
    }
    Ok(files)
}

fn map_sample(engine: &Engine, check: &serde_json::Value) -> anyhow::Result<CheckPreview> {
    let check = check::check_from_value(check.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(check::map_one(engine, &sample::service(), &check, None))
}

fn fixture_file(
    name: &str,
    description: &str,
    check: &serde_json::Value,
    expect: &mut serde_json::Value,
) -> (PathBuf, String) {
    let fixture = serde_json::json!({
        "description": description,
        "check": check,
        "settings": {},
        "expect": expect.take(),
    });
    let mut text = serde_json::to_string_pretty(&fixture).expect("JSON values serialise");
    text.push('\n');
    (PathBuf::from("fixtures").join(name), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, types: &[&str], dir: &Path) -> anyhow::Result<ExitCode> {
        let args = NewArgs {
            name: name.into(),
            types: types.iter().map(|t| (*t).to_string()).collect(),
            dir: Some(dir.to_path_buf()),
        };
        run(&args, &mut Out::quiet())
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let e = new("site-http", &["http"], dir.path()).unwrap_err();
        assert!(e.to_string().contains("is not empty"), "{e}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn bad_names_and_types_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p");
        assert!(new("../evil", &["http"], &target).is_err());
        assert!(new("ok", &["HTTP;"], &target).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn the_project_has_no_path_outside_itself_and_the_fixtures_expect_the_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p");
        new("site-mix", &["http", "mysql"], &target).unwrap();
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(r#"path = "vendor/hnc-plugin-sdk""#),
            "{manifest}"
        );
        assert!(!manifest.contains(".."), "{manifest}");
        let lib = std::fs::read_to_string(target.join("src/lib.rs")).unwrap();
        assert!(lib.contains(r#""mysql" => builtin::tcp::map"#), "{lib}");
        let http: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(target.join("fixtures/http.json")).unwrap(),
        )
        .unwrap();
        let lines = http["expect"]["lines"].as_array().unwrap();
        assert!(lines.iter().any(|l| l == "option httpchk"), "{lines:?}");
        let fallback: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(target.join("fixtures/http-absolute-path.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(fallback["expect"]["fallback"], "must be relative");
        assert!(target.join("fixtures/mysql.json").is_file());
        assert!(target.join("wit/mapping.wit").is_file());
        assert!(target.join("vendor/hnc-core/src/builtin/http.rs").is_file());
        let readme = std::fs::read_to_string(target.join("README.md")).unwrap();
        assert!(readme.contains("mysql = \"/etc/haproxy-nomad-connector/plugins/site-mix.wasm\""));
        assert!(!readme.contains("{{"), "{readme}");
    }
}
