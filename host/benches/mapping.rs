//! Mapping figures: a warm call through each built-in plugin against the same
//! mapping as a native function (one run), and plugin load time, compiling
//! against loading the cached compiled artifact.
//!
//! `cargo bench -p haproxy-nomad-connector --bench mapping`;
//! `tests/bench/mapping-figures.sh` runs it and prints the ratios.
//!
//! With `MAPPING_CALLS=<built-in>:<count>[:native]` it skips criterion and
//! makes that many calls, for `tests/bench/mapping-instructions.sh` to count
//! instructions per call under callgrind (noise-free, unlike times).

use criterion::{Criterion, criterion_group};
use haproxy_nomad_connector::mapping::{self, Engine, wasm};
use haproxy_nomad_connector::vocab::check::RenderContext;
use hnc_core::builtin;
use hnc_core::model::{Header, NomadCheck, ServiceContext};
use std::hint::black_box;

fn service() -> ServiceContext {
    ServiceContext {
        name: "web".into(),
        namespace: "default".into(),
        job: "shop".into(),
        group: "web".into(),
        task: String::new(),
        provider: "nomad".into(),
        tags: vec!["haproxy.enable=true".into(), "v1".into()],
        address: "10.0.0.5".into(),
        port: 24071,
    }
}

/// The check a job declares for `check_type`, with the fields Nomad fills
/// for that type only (a tcp check has no path, method or headers).
fn check(check_type: &str) -> NomadCheck {
    let common = NomadCheck {
        name: "health".into(),
        check_type: check_type.into(),
        interval_ms: 10_000,
        timeout_ms: 2_000,
        ..NomadCheck::default()
    };
    match check_type {
        "http" => NomadCheck {
            path: "/health?full=1".into(),
            method: "GET".into(),
            headers: vec![Header {
                name: "X-Check".into(),
                values: vec!["connector".into()],
            }],
            ..common
        },
        "grpc" => NomadCheck {
            grpc_service: "shop.Cart".into(),
            ..common
        },
        "script" => NomadCheck {
            command: "/bin/check".into(),
            args: vec!["--quick".into()],
            ..common
        },
        _ => common,
    }
}

fn warm_calls(c: &mut Criterion) {
    let engine =
        Engine::new(&mapping::Config::default(), RenderContext::default()).expect("built-ins");
    let plugins = engine.plugins();
    let service = service();
    let settings = Vec::new();
    for b in builtin::ALL {
        let check = check(b.name);
        let plugin = plugins[b.name];
        let mut group = c.benchmark_group(format!("warm_call/{}", b.name));
        group.bench_function("wasm", |bench| {
            bench.iter(|| {
                plugin
                    .call(black_box(&service), black_box(&check), &settings)
                    .expect("maps")
            })
        });
        group.bench_function("native", |bench| {
            bench.iter(|| {
                // The wasm call copies its input into the guest; so does this.
                let (s, k) = (black_box(&service).clone(), black_box(&check).clone());
                (b.map)(&s, &k, &settings).expect("maps")
            })
        });
        group.finish();
    }
    let mut group = c.benchmark_group("engine_map");
    let http = check("http");
    group.bench_function("http", |bench| {
        bench.iter(|| engine.map(black_box(&service), Some(black_box(&http))))
    });
    group.finish();
}

fn plugin_load(c: &mut Criterion) {
    let engine = wasm::new_engine().expect("engine");
    let bytes = mapping::builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == "http")
        .map(|(_, b)| *b)
        .expect("http built-in");
    let cache = tempfile::tempdir().expect("temp dir");
    wasm::compile(&engine, bytes, Some(cache.path())).expect("populates the cache");
    let mut group = c.benchmark_group("plugin_load");
    group.sample_size(20);
    group.bench_function("compile", |bench| {
        bench.iter(|| wasm::compile(&engine, black_box(bytes), None).expect("compiles"))
    });
    group.bench_function("cached", |bench| {
        bench.iter(|| wasm::compile(&engine, black_box(bytes), Some(cache.path())).expect("loads"))
    });
    let config = mapping::Config::default();
    group.bench_function("cached_and_validated", |bench| {
        let config = mapping::Config {
            cache_dir: Some(cache.path().into()),
            ..config.clone()
        };
        bench.iter(|| {
            mapping::load_bytes(
                &engine,
                black_box(bytes),
                "builtin:http",
                config.cache_dir.as_deref(),
                config.limits,
            )
            .expect("loads")
        })
    });
    group.finish();
}

/// `MAPPING_CALLS`: `count` calls of one built-in, wasm or native, then exit.
fn counted_calls(spec: &str) {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    let count: usize = parts
        .next()
        .and_then(|n| n.parse().ok())
        .expect("MAPPING_CALLS=<built-in>:<count>[:native]");
    let native = parts.next() == Some("native");
    let engine =
        Engine::new(&mapping::Config::default(), RenderContext::default()).expect("built-ins");
    let plugins = engine.plugins();
    let builtin = builtin::ALL
        .iter()
        .find(|b| b.name == name)
        .expect("a built-in name: http, tcp, grpc or script");
    let (service, check, settings) = (service(), check(name), Vec::new());
    for _ in 0..count {
        if native {
            // As in `warm_calls`: the native side copies its input too.
            let (s, k) = (black_box(&service).clone(), black_box(&check).clone());
            black_box((builtin.map)(&s, &k, &settings)).ok();
        } else {
            black_box(plugins[name].call(black_box(&service), black_box(&check), &settings)).ok();
        }
    }
}

criterion_group!(benches, warm_calls, plugin_load);

fn main() {
    if let Ok(spec) = std::env::var("MAPPING_CALLS") {
        counted_calls(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
