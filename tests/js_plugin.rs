//! The JavaScript recipe of docs/plugin-guide.md, for real: the example
//! `examples/js-http-plugin/mapping.js` built with componentize-js from npm,
//! then run through `plugin check` and `plugin test` with the limits the
//! recipe gives. Skipped, with one line saying so, where `npm` is absent.
//!
//! Prints the fuel and warm call time of the JS plugin and of the Rust
//! built-in for the same check (figures, not assertions).

use haproxy_nomad_connector::mapping::builtin::BUILTINS;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_connector");

/// The componentize-js the recipe pins.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn said(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn connector(args: &[&str]) -> (Output, String) {
    let output = Command::new(BINARY).args(args).output().unwrap();
    let text = said(&output);
    (output, text)
}

/// The line `plugin check` prints with the fuel and warm call time.
fn cost_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.trim_start().starts_with("fuel "))
        .unwrap_or("(no cost line)")
        .trim()
}

#[test]
fn a_javascript_http_plugin_built_with_componentize_js_passes_check_and_test() {
    if !on_path("npm") || !on_path("node") {
        println!(
            "skipped: npm and node are not installed, so the JavaScript recipe cannot be built"
        );
        return;
    }
    // npm's cache and the install are kept between runs.
    let kit = Path::new(env!("CARGO_TARGET_TMPDIR")).join("componentize-js");
    let bin = kit.join("node_modules/.bin/componentize-js");
    if !bin.exists() {
        std::fs::create_dir_all(&kit).unwrap();
        let output = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", COMPONENTIZE_JS])
            .current_dir(&kit)
            .output()
            .unwrap();
        assert!(output.status.success(), "npm install: {}", said(&output));
    }
    let work = tempfile::tempdir().unwrap();
    let component = work.path().join("js-http.wasm");
    let output = Command::new(&bin)
        .arg(repo().join("examples/js-http-plugin/mapping.js"))
        .arg("--wit")
        .arg(repo().join("wit"))
        .args(["--world-name", "mapper", "--disable"])
        .args(["stdio", "random", "clocks", "http", "fetch-event"])
        .arg("--out")
        .arg(&component)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "componentize-js: {}",
        said(&output)
    );

    // The limits of the recipe, for this plugin alone.
    let config = work.path().join("connector.toml");
    std::fs::write(
        &config,
        format!(
            "[mapping]\ncache_dir = {cache:?}\n\n[mapping.plugins]\nhttp = {file:?}\n\n\
             [mapping.plugin_limits.http]\nmemory_bytes = 10485760\n",
            cache = work.path().join("cache").display().to_string(),
            file = component.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(work.path().join("cache")).unwrap();
    let file = component.to_str().unwrap();
    let config = config.to_str().unwrap();

    let (output, js) = connector(&["plugin", "check", file, "--config", config]);
    assert!(output.status.success(), "{js}");
    assert!(js.contains("option httpchk"), "{js}");
    assert!(js.contains("http-check expect status 200-399"), "{js}");

    // The fixture `plugin new` writes from the Rust built-in: the JS
    // plugin gives the same lines.
    let project = work.path().join("rust");
    let (output, text) = connector(&[
        "plugin",
        "new",
        "rust-http",
        "--dir",
        project.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{text}");
    let fixtures = work.path().join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::copy(
        project.join("fixtures/http.json"),
        fixtures.join("http.json"),
    )
    .unwrap();
    let (output, text) = connector(&[
        "plugin",
        "test",
        file,
        "--fixtures",
        fixtures.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("1 passed, 0 failed"), "{text}");

    let (_, bytes) = BUILTINS.iter().find(|(n, _)| *n == "http").unwrap();
    let builtin = work.path().join("builtin-http.wasm");
    std::fs::write(&builtin, bytes).unwrap();
    let (output, rust) = connector(&["plugin", "check", builtin.to_str().unwrap()]);
    assert!(output.status.success(), "{rust}");
    println!(
        "figure: JavaScript http plugin ({} bytes): {}",
        std::fs::metadata(&component).unwrap().len(),
        cost_line(&js)
    );
    println!(
        "figure: Rust built-in http ({} bytes): {}",
        bytes.len(),
        cost_line(&rust)
    );
}
