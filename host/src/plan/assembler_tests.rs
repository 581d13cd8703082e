use super::*;
use crate::plan::assemble;
use crate::plan::model::{Mode, ServerSpec};
use proptest::prelude::*;

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        namespace: "default".into(),
        name: name.into(),
    }
}

fn backend(class: BackendClass, name: &str, servers: &[(&str, u16)]) -> BackendSpec {
    let mut spec = match class {
        BackendClass::Dynamic => BackendSpec::dynamic(name),
        BackendClass::Custom => BackendSpec::custom(name),
    };
    for (server, port) in servers {
        spec.insert(ServerSpec::new(*server, [10, 0, 0, 1].into(), *port));
    }
    spec
}

fn plan(
    key: ServiceKey,
    backend: Option<BackendSpec>,
    domains: &[(DomainMatch, &str)],
) -> ServicePlan {
    ServicePlan {
        key,
        backend: backend.map(Arc::new),
        domains: domains.iter().map(|(k, p)| (*k, (*p).to_owned())).collect(),
        instances: Vec::new(),
        problems: Vec::new(),
        retry_after: None,
    }
}

/// The plans, and an assembler fed every change to them.
#[derive(Default)]
struct World {
    plans: BTreeMap<ServiceKey, ServicePlan>,
    assembler: Assembler,
}

impl World {
    /// Sets (or, with `None`, removes) plans, updates the assembler with
    /// them, and checks it against `assemble` over every plan.
    fn set(&mut self, changes: Vec<(ServiceKey, Option<ServicePlan>)>) -> Update {
        let dirty: BTreeSet<ServiceKey> = changes.iter().map(|(k, _)| k.clone()).collect();
        for (key, plan) in changes {
            match plan {
                Some(plan) => self.plans.insert(key, plan),
                None => self.plans.remove(&key),
            };
        }
        let update = self.assembler.update(&self.plans, &dirty);
        same(self.assembler.assembled(), &assemble(self.plans.values()));
        update
    }
}

fn same(got: &Assembled, want: &Assembled) {
    assert_eq!(got.desired.backends, want.desired.backends);
    assert_eq!(got.desired.domains, want.desired.domains);
    assert_eq!(got.backends, want.backends);
    assert_eq!(got.conflicts, want.conflicts);
}

const EXACT: DomainMatch = DomainMatch::Exact;

#[test]
fn the_next_claimant_takes_a_backend_its_owner_gives_up_with_its_domains() {
    let mut world = World::default();
    let dynamic = |name: &str, port, domain| {
        let spec = backend(BackendClass::Dynamic, "be", &[("s", port)]);
        (
            key(name),
            Some(plan(key(name), Some(spec), &[(EXACT, domain)])),
        )
    };
    world.set(vec![
        dynamic("a", 1, "a.example.com"),
        dynamic("b", 2, "b.example.com"),
        dynamic("c", 3, "c.example.com"),
    ]);
    let state = world.assembler.assembled();
    assert_eq!(state.conflicts.len(), 2, "{:?}", state.conflicts);
    assert_eq!(state.desired.domains.len(), 1);
    let update = world.set(vec![(key("a"), None)]);
    let state = world.assembler.assembled();
    assert_eq!(
        state.backends.get(&key("b")).map(String::as_str),
        Some("be")
    );
    assert_eq!(state.desired.backends["be"].servers["s"].port, 2);
    assert_eq!(
        state
            .desired
            .domains
            .get(&(EXACT, "b.example.com".into()))
            .map(String::as_str),
        Some("be")
    );
    assert!(
        !state
            .desired
            .domains
            .contains_key(&(EXACT, "a.example.com".into()))
    );
    assert_eq!(
        state.conflicts,
        ["service default/c refused: backend \"be\" already belongs to service default/b"]
    );
    assert_eq!(update.touched, BTreeSet::from(["be".to_owned()]));
    assert_eq!(update.changed.keys().collect::<Vec<_>>(), ["be"]);
    assert_eq!(update.changed["be"].as_ref().unwrap().servers["s"].port, 1);
}

#[test]
fn custom_claims_share_a_backend_until_one_leaves() {
    let mut world = World::default();
    let custom = |name: &str, server| {
        let spec = backend(BackendClass::Custom, "be_ops", &[(server, 80)]);
        (key(name), Some(plan(key(name), Some(spec), &[])))
    };
    let update = world.set(vec![custom("one", "s1"), custom("two", "s2")]);
    assert_eq!(
        update.changed,
        BTreeMap::from([("be_ops".to_owned(), None)])
    );
    let servers = &world.assembler.assembled().desired.backends["be_ops"].servers;
    assert_eq!(servers.keys().collect::<Vec<_>>(), ["s1", "s2"]);
    let update = world.set(vec![(key("one"), None)]);
    let state = world.assembler.assembled();
    assert_eq!(
        state.desired.backends["be_ops"]
            .servers
            .keys()
            .collect::<Vec<_>>(),
        ["s2"]
    );
    assert_eq!(state.backends.keys().collect::<Vec<_>>(), [&key("two")]);
    assert_eq!(update.changed["be_ops"].as_ref().unwrap().servers.len(), 2);
}

#[test]
fn a_domain_routes_to_its_next_claimant_when_the_first_leaves() {
    let mut world = World::default();
    let claim = |name: &str, backend_name: &str| {
        let spec = backend(BackendClass::Dynamic, backend_name, &[("s", 80)]);
        (
            key(name),
            Some(plan(key(name), Some(spec), &[(EXACT, "api.example.com")])),
        )
    };
    world.set(vec![claim("a", "be_a"), claim("b", "be_b")]);
    assert_eq!(
        world.assembler.assembled().conflicts,
        [
            "domain \"api.example.com\" of service default/b refused: it already routes to backend \"be_a\""
        ]
    );
    let update = world.set(vec![(key("a"), None)]);
    let state = world.assembler.assembled();
    assert!(state.conflicts.is_empty());
    assert_eq!(
        state.desired.domains[&(EXACT, "api.example.com".into())],
        "be_b"
    );
    assert_eq!(update.touched, BTreeSet::from(["be_a".to_owned()]));
    assert_eq!(update.changed.keys().collect::<Vec<_>>(), ["be_a"]);
}

#[test]
fn a_plan_without_a_named_backend_claims_nothing() {
    let mut world = World::default();
    let unnamed = backend(BackendClass::Custom, "", &[("s", 80)]);
    let update = world.set(vec![
        (
            key("a"),
            Some(plan(key("a"), Some(unnamed), &[(EXACT, "a.example.com")])),
        ),
        (
            key("b"),
            Some(plan(key("b"), None, &[(EXACT, "a.example.com")])),
        ),
    ]);
    assert_eq!(update, Update::default());
    assert!(world.assembler.assembled().desired.domains.is_empty());
}

/// A plan in a small universe: backend (index 3: unnamed, 4: none), custom
/// or not, `mode tcp` or not, servers (name index, port), domains (exact or
/// prefix, pattern index).
type Shape = (usize, bool, bool, Vec<(usize, u16)>, Vec<(bool, usize)>);

/// A plan's shape, or `None`: the plan is removed.
fn shape() -> impl Strategy<Value = Option<Shape>> {
    let shape = (
        0..5usize,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((0..2usize, 1..4u16), 1..=2),
        prop::collection::vec((any::<bool>(), 0..3usize), 0..=3),
    );
    prop::option::weighted(0.8, shape)
}

/// The six services, not in index order.
fn service(i: usize) -> ServiceKey {
    ServiceKey {
        namespace: ["ns1", "ns0"][i % 2].into(),
        name: format!("svc{}", 5 - i),
    }
}

fn build(key: ServiceKey, (name, custom, tcp, servers, domains): &Shape) -> ServicePlan {
    let class = if *custom {
        BackendClass::Custom
    } else {
        BackendClass::Dynamic
    };
    let name_index = *name;
    let name = ["be_a", "be_b", "be_c", "", ""][name_index];
    let servers: Vec<(String, u16)> = servers.iter().map(|(s, p)| (format!("s{s}"), *p)).collect();
    let servers: Vec<(&str, u16)> = servers.iter().map(|(s, p)| (s.as_str(), *p)).collect();
    let mut spec = backend(class, name, &servers);
    if *tcp {
        spec.mode = Mode::Tcp;
    }
    let patterns = ["a.example.com", "b.example.com", "c.example.com"];
    let domains: Vec<(DomainMatch, &str)> = domains
        .iter()
        .map(|(exact, p)| {
            (
                if *exact { EXACT } else { DomainMatch::Prefix },
                patterns[*p],
            )
        })
        .collect();
    plan(key, (name_index < 4).then_some(spec), &domains)
}

/// The named backend a plan claims, if any.
fn claimed(plan: Option<&ServicePlan>) -> Option<String> {
    let backend = plan?.backend.as_ref()?;
    (!backend.name.is_empty()).then(|| backend.name.clone())
}

/// One step: plans set or removed, and services marked dirty although unchanged.
type Step = (Vec<(usize, Option<Shape>)>, Vec<usize>);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn updates_give_what_assemble_gives(steps in prop::collection::vec(
        (prop::collection::vec((0..6usize, shape()), 1..=3), prop::collection::vec(0..6usize, 0..=1)),
        1..24,
    )) {
        let mut plans: BTreeMap<ServiceKey, ServicePlan> = BTreeMap::new();
        let mut assembler = Assembler::default();
        for (changes, extra) in &steps as &[Step] {
            let before = assembler.assembled().clone();
            let dirty: BTreeSet<ServiceKey> =
                changes.iter().map(|(i, _)| *i).chain(extra.iter().copied()).map(service).collect();
            let mut touched: BTreeSet<String> = dirty.iter().filter_map(|k| claimed(plans.get(k))).collect();
            for (i, shape) in changes {
                match shape {
                    Some(shape) => plans.insert(service(*i), build(service(*i), shape)),
                    None => plans.remove(&service(*i)),
                };
            }
            touched.extend(dirty.iter().filter_map(|k| claimed(plans.get(k))));
            let update = assembler.update(&plans, &dirty);
            let now = assembler.assembled();
            let want = assemble(plans.values());
            prop_assert_eq!(&now.desired.backends, &want.desired.backends);
            prop_assert_eq!(&now.desired.domains, &want.desired.domains);
            prop_assert_eq!(&now.backends, &want.backends);
            prop_assert_eq!(&now.conflicts, &want.conflicts);
            prop_assert_eq!(&update.touched, &touched);
            let was = |n: &String| before.desired.backends.get(n);
            let is = |n: &String| now.desired.backends.get(n);
            let every: BTreeSet<&String> = before.desired.backends.keys().chain(now.desired.backends.keys()).collect();
            for name in every.into_iter().filter(|n| !touched.contains(*n)) {
                prop_assert_eq!(was(name), is(name), "{} changed untouched", name);
            }
            let changed: BTreeMap<String, Option<Arc<BackendSpec>>> = touched
                .iter()
                .filter(|n| was(n) != is(n))
                .map(|n| (n.clone(), was(n).cloned()))
                .collect();
            prop_assert_eq!(&update.changed, &changed);
            // The same, derived from the dirty services' backends before and after.
            let reasons: BTreeMap<String, Option<Arc<BackendSpec>>> = dirty
                .iter()
                .flat_map(|s| [before.backends.get(s), now.backends.get(s)])
                .flatten()
                .filter(|n| was(n) != is(n))
                .map(|n| (n.clone(), was(n).cloned()))
                .collect();
            prop_assert_eq!(&update.changed, &reasons);
        }
    }
}
