use super::*;
use crate::plan::change::{DomainAction, DomainChange};
use crate::plan::model::{AdminState, DomainMap, DomainMatch, ServerSpec};
use crate::vocab::syntax::Token;
use std::net::{IpAddr, Ipv4Addr};

const GRACE: Duration = Duration::from_secs(30);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn server(name: &str, last: u8) -> ServerSpec {
    let mut s = ServerSpec::new(names::server_name(name), ip(last), 8080);
    s.check_args = [Token::keyword("check")].into();
    s
}

fn running(spec: &ServerSpec) -> ActualServer {
    ActualServer {
        applied: Some(spec.fingerprint()),
        maps: spec.map_entries(),
        ..ActualServer::new(&spec.name, spec.addr, spec.port)
    }
}

fn backend(name: &str, servers: &[ServerSpec]) -> BackendSpec {
    let mut b = BackendSpec::dynamic(name);
    for s in servers {
        b.insert(s.clone());
    }
    b
}

fn desired(backends: &[BackendSpec]) -> Desired {
    let mut d = Desired::default();
    for b in backends {
        d.insert(b.clone());
    }
    d
}

/// The actual state that matches `spec` exactly.
fn applied(spec: &BackendSpec) -> ActualBackend {
    ActualBackend {
        name: spec.name.clone(),
        running: true,
        managed: (spec.class == BackendClass::Dynamic).then(|| spec.fingerprint()),
        servers: spec
            .servers
            .values()
            .map(|s| (s.name.clone(), running(s)))
            .collect(),
    }
}

fn actual(backends: &[ActualBackend]) -> Actual {
    Actual {
        backends: backends
            .iter()
            .map(|b| (b.name.clone(), b.clone()))
            .collect(),
        drain_grace: GRACE,
        domain_maps: [DomainMatch::Exact, DomainMatch::Prefix, DomainMatch::Regex]
            .into_iter()
            .map(|k| (k, DomainMap::Loaded(Default::default())))
            .collect(),
    }
}

fn operator(name: &str, servers: &[&str]) -> ActualBackend {
    ActualBackend {
        name: name.into(),
        running: true,
        managed: None,
        servers: servers
            .iter()
            .map(|s| (s.to_string(), ActualServer::new(*s, ip(99), 80)))
            .collect(),
    }
}

fn verbs(changes: &ChangeSet) -> Vec<(String, &'static str)> {
    changes
        .servers
        .iter()
        .map(|c| (c.server.clone(), c.action.verb()))
        .collect()
}

#[test]
fn diff_should_be_empty_when_actual_matches() {
    let b = backend("default_web", &[server("a", 1), server("b", 2)]);
    let changes = diff(&desired(std::slice::from_ref(&b)), &actual(&[applied(&b)]));
    assert!(changes.is_empty(), "{changes:?}");
    assert!(changes.refusals.is_empty());
    assert_eq!(changes.requeue_after, None);
}

#[test]
fn diff_should_create_new_backend_and_add_its_servers() {
    let b = backend("default_web", &[server("a", 1)]);
    let changes = diff(&desired(&[b]), &actual(&[]));
    assert_eq!(
        changes.backends,
        vec![BackendChange::Create("default_web".into())]
    );
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "add")]);
}

#[test]
fn diff_should_add_missing_server_without_reload() {
    let b = backend("default_web", &[server("a", 1), server("b", 2)]);
    let mut have = applied(&b);
    have.servers.remove("_nomad-b");
    let changes = diff(&desired(&[b]), &actual(&[have]));
    assert!(!changes.needs_reload());
    assert_eq!(verbs(&changes), vec![("_nomad-b".into(), "add")]);
}

#[test]
fn diff_should_drain_removed_server_then_remove_after_grace() {
    let b = backend("default_web", &[server("a", 1)]);
    let gone = server("b", 2);
    let mut have = applied(&b);
    have.servers.insert(gone.name.clone(), running(&gone));
    let want = desired(&[b]);
    let changes = diff(&want, &actual(&[have.clone()]));
    assert_eq!(verbs(&changes), vec![("_nomad-b".into(), "drain")]);
    assert_eq!(changes.requeue_after, Some(GRACE));

    let draining = have.servers.get_mut("_nomad-b").unwrap();
    draining.admin.drain = true;
    draining.drained_for = Some(Duration::from_secs(10));
    let changes = diff(&want, &actual(&[have.clone()]));
    assert!(changes.is_empty());
    assert_eq!(changes.requeue_after, Some(Duration::from_secs(20)));

    have.servers.get_mut("_nomad-b").unwrap().drained_for = Some(GRACE);
    let changes = diff(&want, &actual(&[have]));
    assert_eq!(verbs(&changes), vec![("_nomad-b".into(), "remove")]);
}

#[test]
fn diff_should_cancel_drain_when_instance_comes_back() {
    let b = backend("default_web", &[server("a", 1)]);
    let mut have = applied(&b);
    let a = have.servers.get_mut("_nomad-a").unwrap();
    a.admin.drain = true;
    a.drained_for = Some(Duration::from_secs(5));
    let changes = diff(&desired(&[b]), &actual(&[have]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "undrain")]);
}

#[test]
fn diff_should_drain_a_wanted_server_that_asks_for_it_once() {
    let mut s = server("a", 1);
    s.drain = true;
    let b = backend("default_web", &[s]);
    let mut have = applied(&b);
    let changes = diff(&desired(std::slice::from_ref(&b)), &actual(&[have.clone()]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "drain")]);
    assert!(changes.requeue_after.is_none(), "a wanted server stays");
    have.servers.get_mut("_nomad-a").unwrap().admin.drain = true;
    assert!(diff(&desired(&[b]), &actual(&[have])).is_empty());
}

#[test]
fn diff_should_remove_at_once_without_grace_or_in_maint() {
    let b = backend("default_web", &[]);
    let gone = server("b", 2);
    let mut have = applied(&b);
    have.servers.insert(gone.name.clone(), running(&gone));
    let mut now = actual(&[have.clone()]);
    now.drain_grace = Duration::ZERO;
    assert_eq!(
        verbs(&diff(&desired(std::slice::from_ref(&b)), &now)),
        vec![("_nomad-b".into(), "remove")]
    );
    have.servers.get_mut("_nomad-b").unwrap().admin = AdminState {
        maint: true,
        drain: false,
    };
    assert_eq!(
        verbs(&diff(&desired(&[b]), &actual(&[have]))),
        vec![("_nomad-b".into(), "remove")]
    );
}

#[test]
fn diff_should_change_weight_and_address_at_runtime() {
    let mut a = server("a", 1);
    let b = backend("default_web", std::slice::from_ref(&a));
    let have = applied(&b);
    a.weight = 20;
    a.addr = ip(7);
    let changes = diff(&desired(&[backend("default_web", &[a])]), &actual(&[have]));
    assert!(!changes.needs_reload());
    assert_eq!(
        verbs(&changes),
        vec![
            ("_nomad-a".into(), "readdress"),
            ("_nomad-a".into(), "set-weight")
        ]
    );
}

#[test]
fn diff_should_rewrite_map_entries_at_runtime() {
    let mut a = server("a", 1);
    a.host_entry = true;
    a.uri_entry = Some(Token::word("uri", "/health", 10).unwrap());
    let have = applied(&backend("default_web", std::slice::from_ref(&a)));
    a.uri_entry = Some(Token::word("uri", "/ready", 10).unwrap());
    let changes = diff(
        &desired(&[backend("default_web", std::slice::from_ref(&a))]),
        &actual(std::slice::from_ref(&have)),
    );
    assert!(!changes.needs_reload(), "a new check URI needs no reload");
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "set-maps")]);
    a.addr = ip(9);
    let changes = diff(&desired(&[backend("default_web", &[a])]), &actual(&[have]));
    assert_eq!(
        verbs(&changes),
        vec![
            ("_nomad-a".into(), "readdress"),
            ("_nomad-a".into(), "set-maps")
        ]
    );
}

#[test]
fn diff_should_enable_server_in_maint_the_safe_way() {
    let b = backend("default_web", &[server("a", 1)]);
    let mut have = applied(&b);
    have.servers.get_mut("_nomad-a").unwrap().admin.maint = true;
    let changes = diff(&desired(&[b]), &actual(&[have]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "enable")]);
}

#[test]
fn diff_should_reload_for_backend_check_change() {
    let b = backend("default_web", &[server("a", 1)]);
    let have = applied(&b);
    let mut changed = b.clone();
    changed.check = vec![vec![Token::keyword("option"), Token::keyword("httpchk")]];
    let changes = diff(&desired(&[changed]), &actual(&[have]));
    assert_eq!(
        changes.backends,
        vec![BackendChange::Update {
            backend: "default_web".into(),
            lines_changed: true,
            servers_changed: vec![],
        }]
    );
    assert!(changes.servers.is_empty());
}

#[test]
fn diff_should_reload_for_server_check_args_in_own_backend() {
    let b = backend("default_web", &[server("a", 1)]);
    let have = applied(&b);
    let mut a = server("a", 1);
    a.check_args = [
        &a.check_args[..],
        &[Token::keyword("inter"), Token::millis(500)],
    ]
    .concat()
    .into();
    let changes = diff(&desired(&[backend("default_web", &[a])]), &actual(&[have]));
    assert_eq!(
        changes.backends,
        vec![BackendChange::Update {
            backend: "default_web".into(),
            lines_changed: false,
            servers_changed: vec!["_nomad-a".into()],
        }]
    );
    assert!(changes.servers.is_empty(), "no re-add: {changes:?}");
}

#[test]
fn diff_should_replace_server_with_changed_args_in_custom_backend() {
    let mut b = BackendSpec::custom("be_app");
    b.insert(server("a", 1));
    let mut have = applied(&b);
    have.servers
        .insert("web1".into(), ActualServer::new("web1", ip(9), 80));
    let mut a = server("a", 1);
    a.backup = true;
    let mut want = BackendSpec::custom("be_app");
    want.insert(a);
    let changes = diff(&desired(&[want]), &actual(&[have]));
    assert!(!changes.needs_reload());
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "replace")]);
}

#[test]
fn diff_should_leave_operator_servers_alone() {
    let mut want = BackendSpec::custom("be_app");
    want.insert(server("a", 1));
    let have = operator("be_app", &["web1", "web2"]);
    let changes = diff(&desired(&[want]), &actual(&[have]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "add")]);
    let stale = operator("be_other", &["web1", "_nomad-old"]);
    let changes = diff(&desired(&[]), &actual(&[stale]));
    assert_eq!(verbs(&changes), vec![("_nomad-old".into(), "drain")]);
    assert!(
        changes.backends.is_empty(),
        "never deletes an operator backend"
    );
}

#[test]
fn diff_should_refuse_name_collision_with_operator_backend() {
    let b = backend("default_web", &[server("a", 1)]);
    let changes = diff(&desired(&[b]), &actual(&[operator("default_web", &["x"])]));
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(
        changes.refusals,
        vec![Refusal::NameCollision {
            backend: "default_web".into()
        }]
    );
}

#[test]
fn diff_should_refuse_custom_backend_that_does_not_exist_or_is_ours() {
    let mut want = BackendSpec::custom("be_app");
    want.insert(server("a", 1));
    let changes = diff(&desired(&[want.clone()]), &actual(&[]));
    assert!(matches!(
        changes.refusals[..],
        [Refusal::NoSuchBackend { .. }]
    ));
    let ours = applied(&backend("be_app", &[]));
    let changes = diff(&desired(&[want]), &actual(&[ours]));
    assert!(matches!(
        changes.refusals[..],
        [Refusal::ClassConflict { .. }]
    ));
    assert!(changes.is_empty());
}

#[test]
fn diff_should_refuse_unowned_names_invalid_names_and_heavy_weights() {
    let mut want = BackendSpec::custom("be_app");
    want.insert(ServerSpec::new("web9", ip(1), 80));
    let changes = diff(&desired(&[want]), &actual(&[operator("be_app", &["web9"])]));
    assert!(matches!(
        changes.refusals[..],
        [Refusal::NotConnectorServer { .. }]
    ));
    assert!(changes.is_empty(), "never touches web9: {changes:?}");

    let mut heavy = server("a", 1);
    heavy.weight = 300;
    let bad = backend("bad;name", &[]);
    let changes = diff(
        &desired(&[backend("default_web", &[heavy]), bad]),
        &actual(&[]),
    );
    assert_eq!(changes.refusals.len(), 2, "{:?}", changes.refusals);
    assert_eq!(changes.backends.len(), 1, "only default_web is created");
    assert!(changes.servers.is_empty());
}

#[test]
fn diff_should_delete_unwanted_backend_once_empty() {
    let b = backend("default_old", &[server("a", 1)]);
    let changes = diff(&desired(&[]), &actual(&[applied(&b)]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "drain")]);
    assert!(changes.backends.is_empty());
    let empty = applied(&backend("default_old", &[]));
    let changes = diff(&desired(&[]), &actual(&[empty]));
    assert_eq!(
        changes.backends,
        vec![BackendChange::Delete("default_old".into())]
    );
}

#[test]
fn diff_should_recreate_own_backend_lost_by_haproxy() {
    let b = backend("default_web", &[server("a", 1)]);
    let mut have = applied(&b);
    have.running = false;
    have.servers.clear();
    let changes = diff(&desired(&[b]), &actual(&[have]));
    assert_eq!(
        changes.backends,
        vec![BackendChange::Create("default_web".into())]
    );
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "add")]);
}

fn with_domains(mut d: Desired, entries: &[(DomainMatch, &str, &str)]) -> Desired {
    for (kind, pattern, backend) in entries {
        d.domains
            .insert((*kind, pattern.to_string()), backend.to_string());
    }
    d
}

fn holding(mut a: Actual, kind: DomainMatch, entries: &[(&str, &str)]) -> Actual {
    a.domain_maps
        .insert(kind, DomainMap::loaded(entries.iter().copied()));
    a
}

fn domain(kind: DomainMatch, pattern: &str, action: DomainAction) -> DomainChange {
    DomainChange {
        kind,
        pattern: pattern.into(),
        action,
    }
}

#[test]
fn diff_should_add_missing_domain_entries_of_every_kind() {
    let web = backend("default_web", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&web)),
        &[
            (DomainMatch::Exact, "api.example.com", "default_web"),
            (DomainMatch::Prefix, "api.", "default_web"),
            (
                DomainMatch::Regex,
                r"^api[0-9]+\.example\.com$",
                "default_web",
            ),
        ],
    );
    let changes = diff(&want, &actual(&[applied(&web)]));
    let add = || DomainAction::Add("default_web".into());
    assert_eq!(
        changes.domains,
        [
            domain(DomainMatch::Exact, "api.example.com", add()),
            domain(DomainMatch::Prefix, "api.", add()),
            domain(DomainMatch::Regex, r"^api[0-9]+\.example\.com$", add()),
        ]
    );
    assert!(!changes.needs_reload() && changes.refusals.is_empty());
    assert!(!changes.is_empty());
}

#[test]
fn diff_should_be_empty_when_maps_match() {
    let web = backend("default_web", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&web)),
        &[(DomainMatch::Exact, "api.example.com", "default_web")],
    );
    let have = holding(
        actual(&[applied(&web)]),
        DomainMatch::Exact,
        &[("api.example.com", "default_web")],
    );
    let changes = diff(&want, &have);
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn diff_should_repoint_reset_and_remove_domain_entries() {
    let web = backend("default_web", &[server("a", 1)]);
    let api = backend("default_api", &[server("b", 2)]);
    let want = with_domains(
        desired(&[web.clone(), api.clone()]),
        &[
            (DomainMatch::Exact, "moved.example.com", "default_api"),
            (DomainMatch::Exact, "twice.example.com", "default_web"),
        ],
    );
    let have = holding(
        actual(&[applied(&web), applied(&api)]),
        DomainMatch::Exact,
        &[
            ("moved.example.com", "default_web"),
            ("twice.example.com", "default_web"),
            ("twice.example.com", "default_api"),
            ("gone.example.com", "default_web"),
        ],
    );
    let changes = diff(&want, &have);
    assert_eq!(
        changes.domains,
        [
            domain(
                DomainMatch::Exact,
                "moved.example.com",
                DomainAction::Set("default_api".into())
            ),
            domain(
                DomainMatch::Exact,
                "twice.example.com",
                DomainAction::Reset("default_web".into())
            ),
            domain(DomainMatch::Exact, "gone.example.com", DomainAction::Remove),
        ]
    );
    assert!(changes.servers.is_empty() && !changes.needs_reload());
}

#[test]
fn diff_should_refuse_domain_outside_its_grammar_naming_pattern_and_backend() {
    let web = backend("default_web", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&web)),
        &[
            (DomainMatch::Exact, "evil.com;del map x y", "default_web"),
            (DomainMatch::Prefix, "API.", "default_web"),
            (DomainMatch::Regex, "^a b$", "default_web"),
        ],
    );
    let changes = diff(&want, &actual(&[applied(&web)]));
    assert!(changes.domains.is_empty(), "{changes:?}");
    assert_eq!(changes.refusals.len(), 3, "{:?}", changes.refusals);
    let first = changes.refusals[0].to_string();
    assert!(
        first.contains("\"evil.com;del map x y\"") && first.contains("\"default_web\""),
        "{first}"
    );
    assert!(changes.refusals.iter().all(Refusal::is_domain));
}

#[test]
fn diff_should_refuse_domain_of_unknown_or_refused_backend_and_drop_its_entry() {
    let taken = backend("default_taken", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&taken)),
        &[
            (DomainMatch::Exact, "taken.example.com", "default_taken"),
            (DomainMatch::Exact, "ghost.example.com", "default_ghost"),
        ],
    );
    // default_taken collides with an operator's backend: an entry must
    // not route its domain there.
    let have = holding(
        actual(&[operator("default_taken", &["x"])]),
        DomainMatch::Exact,
        &[("taken.example.com", "default_taken")],
    );
    let changes = diff(&want, &have);
    assert_eq!(
        changes.domains,
        [domain(
            DomainMatch::Exact,
            "taken.example.com",
            DomainAction::Remove
        )]
    );
    let unknown: Vec<&str> = changes
        .refusals
        .iter()
        .filter_map(|r| match r {
            Refusal::DomainBackendUnknown { pattern, .. } => Some(pattern.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(unknown, ["ghost.example.com", "taken.example.com"]);
}

#[test]
fn diff_should_refuse_domains_whose_map_is_off_or_not_loaded() {
    let web = backend("default_web", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&web)),
        &[
            (DomainMatch::Prefix, "api.", "default_web"),
            (DomainMatch::Regex, "^api", "default_web"),
        ],
    );
    let mut have = actual(&[applied(&web)]);
    have.domain_maps.remove(&DomainMatch::Prefix);
    have.domain_maps
        .insert(DomainMatch::Regex, DomainMap::NotLoaded);
    let changes = diff(&want, &have);
    assert!(changes.is_empty(), "{changes:?}");
    assert!(matches!(
        changes.refusals[..],
        [
            Refusal::DomainMapOff { .. },
            Refusal::DomainMapNotLoaded { .. }
        ]
    ));
    assert!(
        changes.refusals[0]
            .to_string()
            .contains("no domain_map_prefix is configured"),
        "{}",
        changes.refusals[0]
    );
}

#[test]
fn diff_should_route_domain_to_backend_it_creates() {
    let web = backend("default_web", &[server("a", 1)]);
    let want = with_domains(
        desired(std::slice::from_ref(&web)),
        &[(DomainMatch::Exact, "web.example.com", "default_web")],
    );
    let changes = diff(&want, &actual(&[]));
    assert_eq!(
        changes.backends,
        [BackendChange::Create("default_web".into())]
    );
    assert_eq!(
        changes.domains.len(),
        1,
        "the driver holds it until the reload"
    );
}

#[test]
fn diff_should_remove_foreign_entries_it_can_address_only() {
    let have = holding(
        actual(&[]),
        DomainMatch::Exact,
        &[("Upper.example.com", "be"), ("a;b", "be")],
    );
    let changes = diff(&Desired::default(), &have);
    assert_eq!(
        changes.domains,
        [domain(
            DomainMatch::Exact,
            "Upper.example.com",
            DomainAction::Remove
        )]
    );
}

#[test]
fn diff_should_keep_the_uri_entry_the_running_check_reads_until_the_reload() {
    let mut a = server("a", 1);
    a.uri_entry = Some(Token::word("uri", "/health", 10).unwrap());
    let http = backend("default_web", std::slice::from_ref(&a));
    let have = applied(&http);
    // The check becomes a TCP check: new lines, no URI entry.
    a.uri_entry = None;
    let mut tcp = backend("default_web", std::slice::from_ref(&a));
    tcp.check = vec![vec![
        Token::word("keyword", "option", 10).unwrap(),
        Token::word("keyword", "tcp-check", 10).unwrap(),
    ]];
    let changes = diff(
        &desired(std::slice::from_ref(&tcp)),
        &actual(std::slice::from_ref(&have)),
    );
    assert!(changes.needs_reload(), "new check lines need a reload");
    assert!(
        verbs(&changes).is_empty(),
        "the running HTTP check keeps its URI until the reload: {:?}",
        verbs(&changes)
    );
    // Reloaded with the new lines: the entry can go.
    let mut reloaded = have.clone();
    reloaded.managed = Some(tcp.fingerprint());
    let changes = diff(&desired(&[tcp]), &actual(&[reloaded]));
    assert_eq!(verbs(&changes), vec![("_nomad-a".into(), "set-maps")]);
}
