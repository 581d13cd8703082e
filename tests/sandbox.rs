//! Sandbox: hostile plugins (WAT) are stopped within their limits, fall back
//! to TCP, and the engine serves the next call normally.

use haproxy_nomad_connector::mapping::{CallError, Engine, Limits, Mapped};
use haproxy_nomad_connector::vocab::check::RenderContext;
use hnc_core::model::{Header, NomadCheck};
use hnc_tests::hostile::{Hostility, component_from_core_wat};
use hnc_tests::mapping::{config_with, http_check, service, write_plugin};

const PLUGIN: &str = "hostile@0.0.1";

fn engine(hostility: Hostility, limits: Limits) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), "hostile", &hostility.component().unwrap());
    let engine = Engine::new(
        &config_with("http", &path, limits),
        RenderContext::default(),
    )
    .expect("a hostile plugin still loads: it behaves for the trial");
    (engine, dir)
}

/// An engine of the built-in plugins under `limits`.
fn builtins(limits: Limits) -> Engine {
    let config = haproxy_nomad_connector::mapping::Config {
        limits,
        ..Default::default()
    };
    Engine::new(&config, RenderContext::default()).expect("the built-ins load")
}

fn map(engine: &Engine, name: &str) -> Mapped {
    engine.map(&service(name, &[]), Some(&http_check("/health")))
}

/// The fallback keeps the job's timing: a TCP check every 5 s.
fn assert_tcp_fallback(mapped: &Mapped, cause: &str) {
    let fallback = mapped.fallback.as_ref().expect("a fallback");
    assert_eq!(fallback.cause, cause, "{}", fallback.reason);
    assert!(fallback.reason.contains(PLUGIN), "{}", fallback.reason);
    assert!(
        mapped
            .rendered
            .backend_lines()
            .iter()
            .all(|l| !l.contains("httpchk"))
    );
    assert_eq!(
        mapped.rendered.server_args(),
        "check inter 5000ms rise 1 fall 1"
    );
}

/// The same plugin answers a well-behaved call right after.
fn assert_serves_next_call(engine: &Engine) {
    let next = map(engine, "web");
    assert_eq!(next.fallback, None);
    assert_eq!(next.plugin.as_deref(), Some(PLUGIN));
    assert_eq!(next.rendered.server_args(), "check");
}

#[test]
fn plugin_fuel_budget_violated_by_endless_loop() {
    let limits = Limits {
        fuel: 2_000_000,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::Spin, limits);
    let mapped = map(&engine, "x-spin");
    assert_tcp_fallback(&mapped, "timeout");
    assert!(
        mapped
            .fallback
            .unwrap()
            .reason
            .contains("fuel budget of 2000000")
    );
    assert_serves_next_call(&engine);
    let stats = engine.stats();
    assert_eq!(
        stats.errors.get(&(PLUGIN.into(), "timeout".into())),
        Some(&1)
    );
    assert_eq!(stats.fallbacks.get("timeout"), Some(&1));
}

#[test]
fn plugin_fuel_budget_obeyed_by_builtins() {
    let limits = Limits {
        fuel: 500_000,
        ..Limits::default()
    };
    let engine = builtins(limits);
    let mapped = engine.map(&service("web", &[]), Some(&http_check("/health")));
    assert_eq!(mapped.fallback, None);
    assert!(mapped.rendered.backend_lines()[0].contains("httpchk"));
}

#[test]
fn plugin_memory_cap_violated_by_memory_bomb() {
    let limits = Limits {
        memory_bytes: 2 << 20,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::MemoryBomb, limits);
    let mapped = map(&engine, "x-bomb");
    assert_tcp_fallback(&mapped, "memory");
    assert!(
        mapped
            .fallback
            .unwrap()
            .reason
            .contains("memory limit of 2097152 bytes")
    );
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_memory_cap_obeyed_by_builtins() {
    let limits = Limits {
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let engine = builtins(limits);
    let mapped = engine.map(&service("web", &[]), Some(&http_check("/health")));
    assert_eq!(mapped.fallback, None);
}

/// The built-ins allocate from an arena that rewinds once a call has freed
/// everything (plugins/sdk/src/arena.rs). A block kept past a call, on the
/// answer's path or the refusal's, would grow the memory call after call
/// until this cap (the guests start at 128 KiB) stopped it.
#[test]
fn builtin_warm_calls_reuse_their_memory() {
    let limits = Limits {
        memory_bytes: 256 << 10,
        warm_instances: 1,
        ..Limits::default()
    };
    let engine = builtins(limits);
    let service = service("web", &["v1", "haproxy.enable=true"]);
    let unknown = vec![("no-such-setting".to_string(), "1".to_string())];
    for (name, plugin) in engine.plugins() {
        let check = NomadCheck {
            check_type: name.into(),
            method: "POST".into(),
            headers: vec![Header {
                name: "X-Check".into(),
                values: vec!["a".into(), "b".into()],
            }],
            grpc_service: "shop.Cart".into(),
            ..http_check("/a/../health?full=1")
        };
        for i in 0..5_000 {
            if let Err(e) = plugin.call(&service, &check, &Vec::new()) {
                panic!("{name}: call {i} failed: {e}");
            }
            match plugin.call(&service, &check, &unknown) {
                Err(CallError::Rejected(_)) => {}
                other => panic!("{name}: call {i} with an unknown setting: {other:?}"),
            }
        }
    }
}

#[test]
fn plugin_trap_falls_back_and_instance_is_replaced() {
    let (engine, _dir) = engine(Hostility::Trap, Limits::default());
    for i in 0..3 {
        let mapped = map(&engine, &format!("x-trap-{i}"));
        assert_tcp_fallback(&mapped, "trap");
        assert_serves_next_call(&engine);
    }
    let stats = engine.stats();
    assert_eq!(stats.errors.get(&(PLUGIN.into(), "trap".into())), Some(&3));
}

#[test]
fn a_failed_input_costs_one_call_within_the_failure_ttl() {
    let (engine, _dir) = engine(Hostility::Trap, Limits::default());
    for _ in 0..5 {
        assert_tcp_fallback(&map(&engine, "x-trap"), "trap");
    }
    let stats = engine.stats();
    assert_eq!(stats.calls.get(PLUGIN), Some(&1));
    assert_eq!(stats.errors.get(&(PLUGIN.into(), "trap".into())), Some(&1));
    assert_eq!(stats.fallbacks.get("trap"), Some(&5));
    // Another input is a call of its own.
    assert_tcp_fallback(&map(&engine, "x-trap-2"), "trap");
    assert_eq!(engine.stats().calls.get(PLUGIN), Some(&2));
}

#[test]
fn plugin_log_bomb_pays_fuel_for_its_log_bytes() {
    // The plugin itself burns a few instructions per `log` call; the host
    // copies 60,000 bytes for each. Fuel per byte stops it.
    let (engine, _dir) = engine(Hostility::LogBomb, Limits::default());
    let mapped = map(&engine, "x-logs");
    assert_tcp_fallback(&mapped, "timeout");
    let reason = mapped.fallback.unwrap().reason;
    assert!(reason.contains("fuel budget of 10000000"), "{reason}");
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_deadline_violated_by_log_bomb_with_unbounded_fuel() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline_ms: 200,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::LogBomb, limits);
    let mapped = map(&engine, "x-logs");
    assert_tcp_fallback(&mapped, "timeout");
    let reason = mapped.fallback.unwrap().reason;
    assert!(reason.contains("deadline of 200 ms passed"), "{reason}");
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_deadline_violated_by_endless_loop_and_obeyed_by_builtins() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline_ms: 200,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::Spin, limits);
    let reason = map(&engine, "x-spin").fallback.unwrap().reason;
    assert!(reason.contains("deadline of 200 ms passed"), "{reason}");
    let built_ins = builtins(limits);
    let mapped = built_ins.map(&service("web", &[]), Some(&http_check("/health")));
    assert_eq!(mapped.fallback, None);
}

#[test]
fn interrupted_plugin_calls_end_at_once() {
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline_ms: 600_000,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::Spin, limits);
    let engine = std::sync::Arc::new(engine);
    let spinning = {
        let engine = engine.clone();
        std::thread::spawn(move || map(&engine, "x-spin"))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    engine.interrupt();
    // Without the interrupt this join would wait for the 10-minute deadline.
    let mapped = spinning.join().unwrap();
    let reason = mapped.fallback.unwrap().reason;
    assert!(reason.contains("the connector is stopping"), "{reason}");
    assert!(engine.interrupted());
}

#[test]
fn plugin_output_is_bounded_while_it_is_read() {
    // 100 notes aliasing one 1 MiB string: refused by the hostcall budget
    // while lifting, before 100 MiB are copied, not by the size check after.
    let (engine, _dir) = engine(Hostility::AliasedNotes, Limits::default());
    let mapped = map(&engine, "x-alias");
    assert_tcp_fallback(&mapped, "invalid-output");
    let reason = mapped.fallback.unwrap().reason;
    assert!(
        reason.contains("an answer or log message over the cap of 65536 bytes"),
        "{reason}"
    );
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_limits_can_be_raised_for_one_check_type_only() {
    // The same plugin serves http and grpc; only grpc may answer 300 KB.
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(
        dir.path(),
        "huge",
        &Hostility::HugeOutput.component().unwrap(),
    );
    let config = haproxy_nomad_connector::config::Config::parse(&format!(
        "[mapping.plugins]\nhttp = {path:?}\ngrpc = {path:?}\n\n\
         [mapping.plugin_limits.grpc]\noutput_bytes = 1048576\nmemory_bytes = 8388608\n",
        path = path.display().to_string()
    ))
    .expect("a valid config");
    let engine = Engine::new(&config.mapping, RenderContext::default()).expect("loads");
    assert_eq!(engine.plugins()["grpc"].limits().output_bytes, 1 << 20);
    assert_eq!(engine.plugins()["http"].limits().output_bytes, 64 << 10);
    let http = map(&engine, "x-huge");
    assert_eq!(http.fallback.unwrap().cause, "invalid-output");
    let grpc_check = NomadCheck {
        check_type: "grpc".into(),
        ..http_check("/")
    };
    let grpc = engine.map(&service("x-huge", &[]), Some(&grpc_check));
    // Within its raised cap, the answer is read: the plugin's own refusal.
    assert_eq!(grpc.fallback.unwrap().cause, "rejected");
}

#[test]
fn limits_for_a_type_no_plugin_serves_are_refused() {
    let config =
        haproxy_nomad_connector::config::Config::parse("[mapping.plugin_limits.htp]\nfuel = 1\n");
    let message = match config {
        Ok(c) => Engine::new(&c.mapping, RenderContext::default())
            .err()
            .expect("refused")
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("mapping.plugin_limits.htp"), "{message}");
}

#[test]
fn instance_limit_violated_and_obeyed() {
    let refused = Engine::new(
        &haproxy_nomad_connector::mapping::Config {
            limits: Limits {
                instances: 0,
                ..Limits::default()
            },
            ..Default::default()
        },
        RenderContext::default(),
    );
    assert!(refused.is_err());
    let engine = builtins(Limits::default());
    assert!(map(&engine, "web").fallback.is_none());
}

#[test]
fn plugin_output_cap_violated() {
    let limits = Limits {
        output_bytes: 64 << 10,
        ..Limits::default()
    };
    let (engine, _dir) = engine(Hostility::HugeOutput, limits);
    let mapped = map(&engine, "x-huge");
    assert_tcp_fallback(&mapped, "invalid-output");
    let reason = mapped.fallback.unwrap().reason;
    assert!(reason.contains("over the cap of 65536 bytes"), "{reason}");
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_invalid_strings_fall_back() {
    for hostility in [Hostility::InvalidUtf8, Hostility::OutOfBounds] {
        let (engine, _dir) = engine(hostility, Limits::default());
        let mapped = map(&engine, "x-strings");
        assert_tcp_fallback(&mapped, "invalid-output");
        assert_serves_next_call(&engine);
    }
}

#[test]
fn plugin_cannot_inject_a_directive() {
    let (engine, _dir) = engine(Hostility::InjectsDirective, Limits::default());
    let mapped = map(&engine, "x-inject");
    let fallback = mapped.fallback.clone().expect("a fallback");
    assert_eq!(fallback.cause, "invalid-value");
    assert!(fallback.reason.contains("check-sni"), "{}", fallback.reason);
    assert_eq!(
        mapped.rendered.server_args(),
        "check inter 5000ms rise 1 fall 1"
    );
    assert!(!mapped.rendered.backend_lines().concat().contains("stolen"));
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_log_flood_is_bounded_and_harmless() {
    let (engine, _dir) = engine(Hostility::LogFlood, Limits::default());
    let mapped = map(&engine, "x-logs");
    assert_eq!(mapped.fallback, None);
    assert_serves_next_call(&engine);
}

#[test]
fn plugin_importing_wasi_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(component (import "wasi:cli/environment@0.2.0" (instance)))"#;
    let path = write_plugin(dir.path(), "wasi", &wat::parse_str(wat).unwrap());
    let err = Engine::new(
        &config_with("grpc", &path, Limits::default()),
        RenderContext::default(),
    )
    .err()
    .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("imports `wasi:cli/environment@0.2.0`"),
        "{message}"
    );
    assert!(message.contains("may import only `log`"), "{message}");
}

#[test]
fn plugin_of_another_wit_major_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wit = std::fs::read_to_string(hnc_tests::hostile::wit_dir().join("mapping.wit")).unwrap();
    let newer = dir.path().join("wit");
    std::fs::create_dir(&newer).unwrap();
    std::fs::write(newer.join("mapping.wit"), wit.replace("@0.1.0;", "@0.2.0;")).unwrap();
    let bytes =
        hnc_tests::hostile::component_from_core_wat_with(&Hostility::None.wat(), &newer).unwrap();
    let path = write_plugin(dir.path(), "v2", &bytes);
    let err = Engine::new(
        &config_with("http", &path, Limits::default()),
        RenderContext::default(),
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("haproxy-nomad:mapping/types@0.2.0"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("speaks haproxy-nomad:mapping@0.1.x"),
        "{err}"
    );
}

#[test]
fn core_module_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), "core", &wat::parse_str("(module)").unwrap());
    let err = Engine::new(
        &config_with("http", &path, Limits::default()),
        RenderContext::default(),
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("core wasm module, not a component"),
        "{err}"
    );
}

#[test]
fn a_well_behaved_wat_plugin_round_trips() {
    let bytes = component_from_core_wat(&Hostility::None.wat()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_plugin(dir.path(), "fine", &bytes);
    let engine = Engine::new(
        &config_with("http", &path, Limits::default()),
        RenderContext::default(),
    )
    .unwrap();
    assert_serves_next_call(&engine);
    assert_eq!(engine.plugins()["http"].info().check_types, vec!["http"]);
}

#[test]
fn engine_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engine_serves_concurrent_tasks_while_a_plugin_traps() {
    let (engine, _dir) = engine(Hostility::Trap, Limits::default());
    let engine = std::sync::Arc::new(engine);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for j in 0..50 {
                    let name = if (i + j) % 5 == 0 { "x-trap" } else { "web" };
                    outcomes.push((name, map(&engine, name).fallback.map(|f| f.cause)));
                }
                outcomes
            })
        })
        .collect();
    let mut traps = 0u64;
    for task in tasks {
        for (name, cause) in task.await.unwrap() {
            match name {
                "x-trap" => {
                    assert_eq!(cause, Some("trap"));
                    traps += 1;
                }
                _ => assert_eq!(cause, None),
            }
        }
    }
    // Every x-trap fell back; the plugin was called for it only until its
    // failure was remembered (at most once per task that raced to it).
    let stats = engine.stats();
    assert_eq!(stats.fallbacks.get("trap"), Some(&traps));
    let errors = stats.errors[&(PLUGIN.into(), "trap".into())];
    assert!((1..=16).contains(&errors), "{errors}");
}

#[test]
fn a_call_reports_the_fuel_it_burned() {
    let limits = Limits {
        fuel: 2_000_000,
        ..Limits::default()
    };
    // A built-in burns some fuel, far from the budget, and the same again
    // on the next (warm) call.
    let built_ins = builtins(limits);
    let http = built_ins.plugins()["http"];
    let (web, check) = (service("web", &[]), http_check("/health"));
    let (plan, fuel) = http.call_metered(&web, &check, &Vec::new());
    assert!(plan.is_ok());
    assert!((1_000..200_000).contains(&fuel), "{fuel}");
    assert_eq!(http.call_metered(&web, &check, &Vec::new()).1, fuel);
    // An endless loop burns the whole budget.
    let (spinning, _dir) = engine(Hostility::Spin, limits);
    let hostile = spinning.plugins()["http"];
    let (spun, fuel) = hostile.call_metered(&service("x-spin", &[]), &check, &Vec::new());
    assert!(matches!(spun, Err(CallError::Timeout(_))), "{spun:?}");
    assert_eq!(fuel, 2_000_000);
}
