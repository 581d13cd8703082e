//! Golden tests: every built-in plugin, run as a wasm component through the
//! engine, on Nomad check JSON; the typed result and the rendered HAProxy
//! lines must equal `tests/golden/<case>.out`.
//!
//! A case is `tests/golden/<case>.json`: `check` (a Nomad `ServiceCheck` as
//! the job API returns it, or null), optional `check_port` (the allocation's
//! port for the check's label), `tags` and `settings` (per check type).
//! Regenerate after an intended change with `UPDATE_GOLDEN=1`, then review
//! the diff: these files are the specification of the default mappings.

use haproxy_nomad_connector::mapping::{self, Engine};
use haproxy_nomad_connector::nomad::job::JobSpec;
use haproxy_nomad_connector::vocab::check::RenderContext;
use hnc_tests::mapping::service;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// The host map path the golden files name; `haproxy -c` gets a real file.
const HOST_MAP: &str = "/run/haproxy/check-hosts.map";
/// The URI map path the golden files name.
const URI_MAP: &str = "/run/haproxy/check-uris.map";

fn run_case(engine: &Engine, case: &Value) -> (String, Vec<String>, String) {
    let job = json!({
        "ID": "golden",
        "TaskGroups": [{"Name": "g", "Services": [{
            "Name": "svc", "PortLabel": "http", "Provider": "nomad",
            "Checks": if case["check"].is_null() { json!(null) } else { json!([case["check"]]) },
        }]}],
    });
    let spec = JobSpec::from_value(job).expect("a valid job");
    let service_spec = &spec.groups[0].services[0];
    let mut check = service_spec
        .primary_check()
        .map(|i| service_spec.checks[i].clone());
    if let (Some(check), Some(port)) = (check.as_mut(), case["check_port"].as_u64()) {
        check.check_port = Some(u16::try_from(port).expect("a port"));
    }
    let tags: Vec<&str> = case["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mapped = engine.map(&service("svc", &tags), check.as_ref());

    let mut out = String::new();
    let _ = writeln!(out, "plugin: {}", mapped.plugin.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "fallback: {}",
        mapped
            .fallback
            .as_ref()
            .map_or("-".to_string(), |f| format!("{}: {}", f.cause, f.reason))
    );
    for tag in &mapped.tags {
        let _ = writeln!(out, "tag: {tag}");
    }
    for note in &mapped.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "--- backend");
    for line in mapped.rendered.backend_lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "--- server\n{}", mapped.rendered.server_args());
    if let Some(uri) = &mapped.rendered.uri_entry {
        let _ = writeln!(out, "uri map entry: {uri}");
    }
    let _ = writeln!(
        out,
        "--- plan\n{}",
        serde_json::to_string_pretty(&mapped.plan).expect("serializable")
    );
    (
        out,
        mapped.rendered.backend_lines(),
        mapped.rendered.server_args(),
    )
}

/// Every case as a backend of one config, checked by the real `haproxy -c`.
fn haproxy_accepts(rendered: &[(String, Vec<String>, String)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = dir.path().join("check-hosts.map");
    std::fs::write(&map, "s 127.0.0.1:1\n").expect("map file");
    let uris = dir.path().join("check-uris.map");
    std::fs::write(&uris, "s /\n").expect("map file");
    let mut config = String::from(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n",
    );
    for (name, lines, args) in rendered {
        let _ = writeln!(config, "backend golden_{name}");
        for line in lines {
            let line = line.replace(HOST_MAP, &map.display().to_string());
            let _ = writeln!(
                config,
                "  {}",
                line.replace(URI_MAP, &uris.display().to_string())
            );
        }
        let _ = writeln!(config, "  server s 127.0.0.1:1 {args}");
    }
    let path = dir.path().join("golden.cfg");
    std::fs::write(&path, &config).expect("config");
    let output = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("haproxy must be installed (tests/run.sh installs it)");
    // 0: valid; 2: valid but no listener.
    assert!(
        matches!(output.status.code(), Some(0 | 2)),
        "haproxy -c refused the rendered checks:\n{}\n{config}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn engine_for(case: &Value) -> Engine {
    let mut config = mapping::Config::default();
    if let Some(settings) = case["settings"].as_object() {
        let text = toml_settings(settings);
        config = toml::from_str::<haproxy_nomad_connector::config::Config>(&text)
            .expect("settings")
            .mapping;
    }
    Engine::new(
        &config,
        RenderContext {
            host_map: Some(HOST_MAP.into()),
            uri_map: Some(URI_MAP.into()),
            ..RenderContext::default()
        },
    )
    .expect("built-ins load")
}

fn toml_settings(settings: &serde_json::Map<String, Value>) -> String {
    let mut text = String::new();
    for (check_type, pairs) in settings {
        let _ = writeln!(text, "[mapping.settings.{check_type}]");
        for (k, v) in pairs.as_object().into_iter().flatten() {
            let _ = writeln!(text, "{k:?} = {v}");
        }
    }
    text
}

#[test]
fn built_in_mappings_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "golden cases missing");
    let default_engine = engine_for(&Value::Null);
    let mut failures = Vec::new();
    let mut rendered = Vec::new();
    for path in &cases {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("case")).expect("JSON");
        let custom = case["settings"].is_object().then(|| engine_for(&case));
        let (actual, lines, args) = run_case(custom.as_ref().unwrap_or(&default_engine), &case);
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        rendered.push((name, lines, args));
        let expected_path = path.with_extension("out");
        if update {
            std::fs::write(&expected_path, &actual).expect("writing golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    haproxy_accepts(&rendered);
}
