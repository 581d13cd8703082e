use super::*;
use crate::nomad::SpecCheck;
use crate::vocab::check::{RenderContext, render};
use hnc_core::builtin::{http, tcp};
use hnc_core::model::CheckPlan;
use std::sync::LazyLock;
use std::time::Duration;

static RENDER: LazyLock<RenderContext> = LazyLock::new(|| RenderContext {
    uri_map: Some("/run/uris.map".into()),
    ..RenderContext::default()
});

/// A check mapper without wasmtime: `http` and `tcp` checks through the
/// built-ins' native mapping functions, anything else a TCP fallback. It
/// applies no `haproxy.check.*` tag and notes each one instead.
struct StubMapper;

impl CheckMapper for StubMapper {
    fn map(&self, service: &ServiceContext, check: Option<&NomadCheck>) -> Arc<Mapped> {
        let typed = check.and_then(|c| match c.check_type.as_str() {
            "http" => http::map(service, c, &Vec::new()).ok(),
            "tcp" => tcp::map(service, c, &Vec::new()).ok(),
            _ => None,
        });
        let fallback = typed.is_none().then(|| Fallback {
            cause: if check.is_some() {
                "unsupported-type"
            } else {
                "no-check"
            },
            reason: "the stub maps only http and tcp checks".into(),
        });
        let plan = typed.unwrap_or_else(CheckPlan::tcp_fallback);
        let rendered = render(&plan, &RENDER).expect("the stub's checks render");
        let notes = service
            .tags
            .iter()
            .filter(|t| t.starts_with("haproxy.check."))
            .map(|t| format!("{t}: not applied by the stub mapper"))
            .collect();
        Arc::new(Mapped {
            plan,
            rendered,
            plugin: None,
            origin: if check.is_some() {
                CheckOrigin::JobSpec
            } else {
                CheckOrigin::None
            },
            fallback,
            tags: Vec::new(),
            notes,
        })
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn instance(id: &str, service: &str, port: u16, tags: &[&str]) -> Instance {
    let mut i = Instance::test(id, service, port);
    i.tags = tags.iter().map(|t| t.to_string()).collect();
    i
}

fn found(version: u64, check: Option<NomadCheck>) -> CheckLookup {
    CheckLookup::Found(std::sync::Arc::new(SpecCheck {
        check,
        others: Vec::new(),
        job_version: version,
        group: "web".into(),
        task: String::new(),
        service: "web".into(),
        port_label: "http".into(),
    }))
}

fn http(path: &str) -> NomadCheck {
    NomadCheck {
        name: "h".into(),
        check_type: "http".into(),
        path: path.into(),
        interval_ms: 5_000,
        timeout_ms: 1_000,
        ..NomadCheck::default()
    }
}

fn plan(name: &str, inputs: &[(&Instance, &CheckLookup)]) -> ServicePlan {
    let inputs: Vec<InstanceInput> = inputs
        .iter()
        .map(|(instance, lookup)| InstanceInput { instance, lookup })
        .collect();
    plan_service(key(name), &inputs, &StubMapper, Reports::Keep)
}

const ON: &str = "haproxy.enable=true";

#[test]
fn enabled_instances_become_servers_with_their_job_check() {
    let a = instance("a", "web", 8001, &[ON, "haproxy.weight=7"]);
    let b = instance("b", "web", 8002, &[]);
    let lookup = found(3, Some(http("/health")));
    let p = plan("web", &[(&a, &lookup), (&b, &lookup)]);
    let backend = p.backend.expect("a backend");
    assert_eq!(backend.name, "default_web");
    assert_eq!(
        backend.servers.len(),
        1,
        "only haproxy.enable=true instances"
    );
    let server = &backend.servers[&names::server_name("a")];
    assert_eq!((server.port, server.weight), (8001, 7));
    assert!(server.check_args.iter().any(|t| t.as_str() == "check"));
    assert_eq!(
        server.uri_entry.as_ref().map(|t| t.as_str()),
        Some("/health")
    );
    assert!(
        backend
            .check
            .iter()
            .any(|l| l.iter().any(|t| t.as_str() == "httpchk"))
    );
    assert_eq!(p.instances.len(), 2);
    assert_eq!(
        p.instances
            .iter()
            .find(|r| r.id == "a")
            .unwrap()
            .job_version,
        Some(3)
    );
}

#[test]
fn rolling_deploy_keeps_each_instance_on_its_versions_path() {
    let old = instance("old", "web", 8001, &[ON]);
    let mut new = instance("new", "web", 8002, &[ON]);
    new.create_index = 9;
    let (v1, v2) = (
        found(1, Some(http("/v1/health"))),
        found(2, Some(http("/v2/health"))),
    );
    let p = plan("web", &[(&old, &v1), (&new, &v2)]);
    let backend = p.backend.unwrap();
    let uri = |id: &str| {
        backend.servers[&names::server_name(id)]
            .uri_entry
            .clone()
            .unwrap()
    };
    assert_eq!(uri("old").as_str(), "/v1/health");
    assert_eq!(uri("new").as_str(), "/v2/health");
    assert!(
        p.instances.iter().all(|r| r.notes.is_empty()),
        "same backend lines: no compromise"
    );
}

#[test]
fn a_check_type_change_uses_the_newest_versions_backend_check_and_says_so() {
    let old = instance("old", "web", 8001, &[ON]);
    let new = instance("new", "web", 8002, &[ON]);
    let tcp = NomadCheck {
        check_type: "tcp".into(),
        ..http("/")
    };
    let (v1, v2) = (found(1, Some(tcp)), found(2, Some(http("/health"))));
    let p = plan("web", &[(&old, &v1), (&new, &v2)]);
    assert!(
        p.backend
            .unwrap()
            .check
            .iter()
            .any(|l| l.iter().any(|t| t.as_str() == "httpchk"))
    );
    let old_report = p.instances.iter().find(|r| r.id == "old").unwrap();
    assert!(
        old_report
            .notes
            .iter()
            .any(|n| n.contains("one check per backend"))
    );
}

#[test]
fn unavailable_specs_fall_back_to_tcp_and_ask_again() {
    let a = instance("a", "web", 8001, &[ON]);
    let lookup = CheckLookup::Unavailable {
        reason: "job web: 500".into(),
        retry_after: Duration::from_secs(30),
    };
    let p = plan("web", &[(&a, &lookup)]);
    assert_eq!(p.retry_after, Some(Duration::from_secs(30)));
    assert!(p.problems[0].contains("job web: 500"));
    let report = &p.instances[0];
    assert_eq!(report.server_args, "check");
    assert_eq!(report.fallback.as_ref().map(|f| f.cause), Some("no-check"));
}

#[test]
fn an_unknown_check_turns_an_http_backend_into_tcp_connects_until_it_is_read() {
    let old = instance("old", "web", 8001, &[ON]);
    let mut new = instance("new", "web", 8002, &[ON]);
    new.create_index = 9;
    let known = found(1, Some(http("/health")));
    let unknown = CheckLookup::Unavailable {
        reason: "job web: 500".into(),
        retry_after: Duration::from_secs(30),
    };
    let p = plan("web", &[(&old, &known), (&new, &unknown)]);
    let backend = p.backend.as_ref().unwrap();
    assert!(
        backend.check.is_empty(),
        "no httpchk: the unknown instance must not be asked for /: {:?}",
        backend.check
    );
    assert_eq!(p.retry_after, Some(Duration::from_secs(30)));
    assert!(p.problems.iter().any(|m| m.contains("TCP connect")));
    let old_report = p.instances.iter().find(|r| r.id == "old").unwrap();
    assert!(old_report.notes.iter().any(|n| n.contains("TCP connect")));

    let read = plan("web", &[(&old, &known), (&new, &known)]);
    assert!(
        read.backend
            .unwrap()
            .check
            .iter()
            .any(|l| l.iter().any(|t| t.as_str() == "httpchk")),
        "the declared check is back once every spec is read"
    );
}

#[test]
fn hostile_tags_are_refused_and_the_rest_stands() {
    let a = instance(
        "a",
        "web",
        8001,
        &[
            ON,
            "haproxy.weight=9000",
            "haproxy.backend.name=x\ny",
            "haproxy.check.path=a;b",
        ],
    );
    let p = plan("web", &[(&a, &found(1, Some(http("/ok"))))]);
    let backend = p.backend.unwrap();
    assert_eq!(backend.name, "default_web");
    assert_eq!(backend.servers.values().next().unwrap().weight, 1);
    assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
    assert!(
        p.instances[0]
            .notes
            .iter()
            .any(|n| n.contains("haproxy.check.path"))
    );
}

#[test]
fn custom_backends_collect_servers_of_several_services() {
    let tags = [ON, "haproxy.backend=custom", "haproxy.backend.name=be_ops"];
    let (a, b) = (
        instance("a", "one", 1, &tags),
        instance("b", "two", 2, &tags),
    );
    let lookup = CheckLookup::Disabled;
    let (p1, p2) = (plan("one", &[(&a, &lookup)]), plan("two", &[(&b, &lookup)]));
    let out = assemble([&p1, &p2]);
    assert!(out.conflicts.is_empty());
    let backend = &out.desired.backends["be_ops"];
    assert_eq!(backend.class, BackendClass::Custom);
    assert_eq!(backend.servers.len(), 2);
}

#[test]
fn conflicting_backend_names_and_domains_refuse_the_later_service() {
    let lookup = CheckLookup::Disabled;
    let a = instance("a", "api", 1, &[ON, "haproxy.domain=api.example.com"]);
    let b = instance("b", "shadow", 2, &[ON, "haproxy.backend.name=default_api"]);
    let c = instance("c", "www", 3, &[ON, "haproxy.domain=API.example.com"]);
    let plans = [
        plan("api", &[(&a, &lookup)]),
        plan("shadow", &[(&b, &lookup)]),
        plan("www", &[(&c, &lookup)]),
    ];
    let out = assemble(&plans);
    assert_eq!(out.desired.backends.len(), 2, "api and www");
    assert_eq!(out.conflicts.len(), 2, "{:?}", out.conflicts);
    assert!(out.conflicts[0].contains("default/shadow refused"));
    assert!(out.conflicts[1].contains("api.example.com"));
    assert_eq!(
        out.desired.domains[&(DomainMatch::Exact, "api.example.com".into())],
        "default_api"
    );
}
