//! The examples stay true: the example config loads with its plugins, and the
//! example jobs parse and map.

use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::mapping::Engine;
use haproxy_nomad_connector::nomad::job::JobSpec;
use haproxy_nomad_connector::report;
use std::path::Path;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"))
}

#[test]
fn example_config_is_valid() {
    let config =
        Config::load(&examples().join("config/connector.toml")).expect("the example config loads");
    Engine::new(&config.mapping, config.render_context()).expect("its plugins and settings load");
    assert_eq!(
        config.haproxy.uri_map.as_deref(),
        Some(Path::new("/var/lib/haproxy/nomad-connector-uris.map"))
    );
}

#[test]
fn example_jobs_parse_and_map() {
    let engine = hnc_tests::mapping::builtin_engine();
    for file in ["jobs/demo.json", "jobs/nomad-docs-read-job.json"] {
        let text = std::fs::read_to_string(examples().join(file)).expect(file);
        let job = JobSpec::from_json(&text).expect(file);
        let reports = report::job_report(&engine, &job);
        assert!(!reports.is_empty(), "{file}: no services");
        assert!(
            reports.iter().all(|r| r.fallback.is_none()),
            "{file}: {reports:#?}"
        );
    }
}
