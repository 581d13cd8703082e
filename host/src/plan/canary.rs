//! Canary weights: a service's canaries get the weight its tags ask for
//! while their deployment runs, drain (`state drain`, weight 0) when it
//! fails, and return
//! to their normal weight on promotion. Only weights and the drain state
//! change, and HAProxy changes both at runtime (`set server … weight`,
//! `set server … state drain`): no reload.
//!
//! - `haproxy.canary.weight=N` (0–256): each canary's weight, relative to
//!   the normal servers' weights as they are.
//! - `haproxy.canary.share=P` (1–99 %): the canaries together get about P %
//!   of the service's traffic. With `S` the sum of the normal servers'
//!   weights (backups left out), `F` the sum of canaries with a fixed
//!   weight and `c` the canaries with a share, each of them gets
//!   `w = round(P × (k·S + k·F) / (c × (100 − P)))` (at least 1, at most
//!   256), where every other weight of the service is multiplied by the
//!   smallest `k` (1 up to what keeps them ≤ 256) that brings the share
//!   within half a point of P, or by the `k` that comes closest. Weights are
//!   whole numbers, so `k` gives the share room: 3 servers of weight 1 and
//!   20 % need `k = 4` (weights 4, 4, 4 and 3). It is computed again on
//!   every change of the service, so the share holds as the service scales.
//! - Neither: [`DEFAULT_CANARY_WEIGHT`].

use super::desired::ServicePlan;
use super::tags::ServiceTags;
use crate::nomad::{CanaryState, Instance};
use crate::vocab::names;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A canary's weight when its tags set neither `haproxy.canary.weight` nor
/// `haproxy.canary.share`: 1, the smallest weight that still sends traffic
/// (0 would keep real requests from ever reaching the new version, and
/// Nomad's health checks alone do not show how it serves). It is never more
/// than a normal server's default weight, and a service whose servers have
/// `haproxy.weight=N` gives an untagged canary 1/N of a server's traffic.
pub const DEFAULT_CANARY_WEIGHT: u16 = 1;

/// HAProxy's largest weight.
const MAX_WEIGHT: u16 = 256;

/// One instance of the service and what the deployments say of it.
#[derive(Debug, Clone, Copy)]
pub struct CanaryInput<'a> {
    /// The registration.
    pub instance: &'a Instance,
    /// Its allocation's canary status from the `Deployment`/`Allocation`
    /// events, if any.
    pub state: Option<CanaryState>,
}

/// What a canary asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Weight(u16, &'static str),
    Share(u8),
    Drain,
}

/// Sets the weights of the canaries of `plan`'s backend (and of its other
/// servers when a share needs room), and notes why in the instance reports.
/// A plan without canaries is left as it is.
pub fn apply(plan: &mut ServicePlan, inputs: &[CanaryInput]) {
    let Some(backend) = plan.backend.as_ref() else {
        return;
    };
    let mut tags: BTreeMap<String, (ServiceTags, Option<CanaryState>, &str)> = BTreeMap::new();
    for input in inputs {
        let parsed = ServiceTags::parse(&input.instance.tags);
        let server = names::server_name(&input.instance.id);
        if parsed.enabled && backend.servers.contains_key(&server) {
            let state = match input.state {
                Some(state) => Some(state),
                None if parsed.canary => Some(CanaryState::Canary),
                None => None,
            };
            tags.insert(server, (parsed, state, input.instance.id.as_str()));
        }
    }
    if tags.values().all(|(_, state, _)| state.is_none()) {
        return;
    }
    // The service's setting: a canary's own tags first, then any instance's
    // (a job without canary_tags carries them in its normal tags).
    let setting = |own: &ServiceTags| -> Option<Ask> {
        let pick = |t: &ServiceTags| {
            t.canary_share.map(Ask::Share).or(t
                .canary_weight
                .map(|w| Ask::Weight(w, "haproxy.canary.weight")))
        };
        pick(own).or_else(|| tags.values().find_map(|(t, _, _)| pick(t)))
    };
    let mut asks: BTreeMap<String, Ask> = BTreeMap::new();
    for (server, (t, state, _)) in &tags {
        let ask = match state {
            None => continue,
            Some(CanaryState::Failed) => Ask::Drain,
            Some(CanaryState::Canary) => setting(t).unwrap_or(Ask::Weight(
                DEFAULT_CANARY_WEIGHT,
                "the default canary weight",
            )),
        };
        asks.insert(server.clone(), ask);
    }
    let backend = Arc::make_mut(plan.backend.as_mut().expect("checked above"));
    let normal: Vec<(String, u16)> = backend
        .servers
        .values()
        .filter(|s| !asks.contains_key(&s.name) && !s.backup)
        .map(|s| (s.name.clone(), s.weight))
        .collect();
    let sum: u32 = normal.iter().map(|(_, w)| u32::from(*w)).sum();
    let max = normal.iter().map(|(_, w)| *w).max().unwrap_or(0);
    let fixed: Vec<u16> = asks
        .values()
        .filter_map(|a| match a {
            Ask::Weight(w, _) => Some(*w),
            _ => None,
        })
        .collect();
    let shares: Vec<u8> = asks
        .values()
        .filter_map(|a| match a {
            Ask::Share(p) => Some(*p),
            _ => None,
        })
        .collect();
    let solved = shares.first().map(|&p| {
        if shares.iter().any(|q| *q != p) {
            plan.problems.push(format!(
                "its canaries ask for different haproxy.canary.share values; {p}% is used"
            ));
        }
        solve(p, shares.len() as u32, sum, max, &fixed)
    });
    let k = solved.map_or(1, |s| s.k);
    let scale = |w: u16| u16::try_from(u32::from(w) * k).map_or(MAX_WEIGHT, |w| w.min(MAX_WEIGHT));
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    for server in backend.servers.values_mut() {
        let note = match asks.get(&server.name) {
            Some(Ask::Drain) => {
                server.weight = 0;
                server.drain = true;
                "canary of a failed or cancelled deployment: drained (weight 0) until Nomad stops it".to_string()
            }
            Some(Ask::Weight(w, source)) => {
                server.weight = scale(*w);
                format!("canary: weight {} ({source} {w})", server.weight)
            }
            Some(Ask::Share(p)) => {
                let s = solved.expect("a share canary is solved");
                server.weight = s.weight;
                format!(
                    "canary: weight {} so that the canaries get {:.1}% (haproxy.canary.share={p})",
                    s.weight, s.achieved
                )
            }
            None if k > 1 && !server.backup => {
                let before = server.weight;
                server.weight = scale(before);
                format!(
                    "weight {} while the service has canaries (its weight {before} × {k}, room for haproxy.canary.share)",
                    server.weight
                )
            }
            None => continue,
        };
        notes.insert(server.name.clone(), note);
    }
    for report in &mut plan.instances {
        if let Some(note) = notes.remove(&report.server) {
            report.notes.push(note);
        }
    }
}

/// The weights that give `c` share canaries `p` % together.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Solved {
    /// What the other weights are multiplied by.
    k: u32,
    /// Each share canary's weight.
    weight: u16,
    /// The share the canaries get, in percent.
    achieved: f64,
}

fn solve(p: u8, c: u32, sum: u32, max: u16, fixed: &[u16]) -> Solved {
    let p32 = u32::from(p);
    let k_max = if max == 0 {
        1
    } else {
        (u32::from(MAX_WEIGHT) / u32::from(max)).max(1)
    };
    let mut best: Option<(f64, Solved)> = None;
    for k in 1..=k_max {
        let others = k * sum
            + fixed
                .iter()
                .map(|w| (u32::from(*w) * k).min(u32::from(MAX_WEIGHT)))
                .sum::<u32>();
        if others == 0 {
            // Only canaries carry weight: they get everything anyway.
            return Solved {
                k: 1,
                weight: 1,
                achieved: 100.0,
            };
        }
        let ideal = f64::from(p32 * others) / f64::from(c * (100 - p32));
        let weight = (ideal.round() as u32).clamp(1, u32::from(MAX_WEIGHT));
        let achieved = 100.0 * f64::from(c * weight) / f64::from(others + c * weight);
        let error = (achieved - f64::from(p32)).abs();
        let solved = Solved {
            k,
            weight: weight as u16,
            achieved,
        };
        if error <= 0.5 {
            return solved;
        }
        if best.is_none_or(|(e, _)| error < e) {
            best = Some((error, solved));
        }
    }
    best.map(|(_, s)| s).expect("k_max is at least 1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{BackendSpec, ServerSpec};
    use crate::plan::{ServiceKey, desired::InstanceReport};
    use std::net::IpAddr;

    fn instance(id: &str, tags: &[&str]) -> Instance {
        Instance {
            id: id.into(),
            namespace: "default".into(),
            service: "web".into(),
            job: "web".into(),
            alloc: format!("alloc-{id}"),
            node: "n".into(),
            datacenter: "dc1".into(),
            address: IpAddr::from([127, 0, 0, 1]),
            port: 8000,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            create_index: 1,
            modify_index: 1,
        }
    }

    fn plan_of(instances: &[Instance], weights: &[u16]) -> ServicePlan {
        let mut backend = BackendSpec::dynamic("default_web");
        for (i, w) in instances.iter().zip(weights) {
            let mut s = ServerSpec::new(names::server_name(&i.id), i.address, i.port);
            s.weight = *w;
            backend.insert(s);
        }
        ServicePlan {
            key: ServiceKey {
                namespace: "default".into(),
                name: "web".into(),
            },
            backend: Some(Arc::new(backend)),
            domains: Vec::new(),
            instances: instances
                .iter()
                .map(|i| InstanceReport {
                    id: i.id.clone(),
                    server: names::server_name(&i.id),
                    address: String::new(),
                    enabled: true,
                    job_version: None,
                    group: String::new(),
                    task: String::new(),
                    check: None,
                    others: Vec::new(),
                    origin: crate::plan::CheckOrigin::None,
                    plugin: None,
                    fallback: None,
                    check_tags: Vec::new(),
                    backend_lines: Vec::new(),
                    server_args: String::new(),
                    notes: Vec::new(),
                })
                .collect(),
            problems: Vec::new(),
            retry_after: None,
        }
    }

    fn weights(plan: &ServicePlan) -> Vec<u16> {
        let b = plan.backend.as_ref().unwrap();
        let mut ids: Vec<&InstanceReport> = plan.instances.iter().collect();
        ids.sort_by(|a, b| a.id.cmp(&b.id));
        ids.iter().map(|r| b.servers[&r.server].weight).collect()
    }

    const ON: &str = "haproxy.enable=true";

    fn run(tags: &[&[&str]], base: &[u16], states: &[Option<CanaryState>]) -> ServicePlan {
        let instances: Vec<Instance> = tags
            .iter()
            .enumerate()
            .map(|(n, t)| instance(&format!("i{n:02}"), t))
            .collect();
        let mut plan = plan_of(&instances, base);
        let inputs: Vec<CanaryInput> = instances
            .iter()
            .zip(states)
            .map(|(instance, state)| CanaryInput {
                instance,
                state: *state,
            })
            .collect();
        apply(&mut plan, &inputs);
        plan
    }

    fn share(plan: &ServicePlan, canaries: &[usize]) -> f64 {
        let w = weights(plan);
        let total: u32 = w.iter().map(|x| u32::from(*x)).sum();
        let c: u32 = canaries.iter().map(|i| u32::from(w[*i])).sum();
        100.0 * f64::from(c) / f64::from(total)
    }

    #[test]
    fn a_service_without_canaries_keeps_its_weights() {
        let plan = run(
            &[&[ON, "haproxy.canary.share=20"], &[ON]],
            &[3, 5],
            &[None, None],
        );
        assert_eq!(weights(&plan), [3, 5]);
        assert!(plan.instances.iter().all(|r| r.notes.is_empty()));
    }

    #[test]
    fn a_share_is_met_within_half_a_point_and_follows_scaling() {
        let c = Some(CanaryState::Canary);
        let tags: &[&str] = &[ON, "haproxy.canary.share=20"];
        // 4 normal servers of weight 1: a canary of weight 1 is 20 %.
        let plan = run(
            &[&[ON], &[ON], &[ON], &[ON], tags],
            &[1; 5],
            &[None, None, None, None, c],
        );
        assert_eq!(weights(&plan), [1, 1, 1, 1, 1]);
        // 3 normal servers: their weights ×4, the canary 3 → 3/15 = 20 %.
        let plan = run(
            &[&[ON], &[ON], &[ON], tags],
            &[1; 4],
            &[None, None, None, c],
        );
        assert_eq!(weights(&plan), [4, 4, 4, 3]);
        assert!(
            plan.instances[3].notes[0].contains("20.0%"),
            "{:?}",
            plan.instances[3].notes
        );
        assert!(plan.instances[0].notes[0].contains("× 4"));
        // Scaled up to 9 normal servers and 2 canaries, with uneven weights.
        let mut all: Vec<&[&str]> = vec![&[ON][..]; 9];
        all.extend([tags, tags]);
        let mut states = vec![None; 9];
        states.extend([c, c]);
        let base = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 1];
        let plan = run(&all, &base, &states);
        let got = share(&plan, &[9, 10]);
        assert!((got - 20.0).abs() <= 0.5, "{got} {:?}", weights(&plan));
        assert!(weights(&plan).iter().all(|w| *w <= 256));
    }

    #[test]
    fn weights_default_and_failed_canaries() {
        let c = Some(CanaryState::Canary);
        let plan = run(
            &[&[ON], &[ON, "haproxy.canary.weight=7"], &[ON]],
            &[10, 10, 10],
            &[None, c, c],
        );
        // The untagged canary takes the service's setting from its sibling.
        assert_eq!(weights(&plan), [10, 7, 7]);
        let plan = run(&[&[ON], &[ON]], &[10, 10], &[None, c]);
        assert_eq!(weights(&plan), [10, DEFAULT_CANARY_WEIGHT]);
        // The registration's marker (canary_tags) makes a canary too.
        let plan = run(
            &[&[ON], &[ON, "haproxy.canary=true"]],
            &[10, 10],
            &[None, None],
        );
        assert_eq!(weights(&plan), [10, 1]);
        let plan = run(
            &[&[ON], &[ON, "haproxy.canary.share=50"]],
            &[1, 1],
            &[None, Some(CanaryState::Failed)],
        );
        assert_eq!(weights(&plan), [1, 0]);
        let servers = &plan.backend.as_ref().unwrap().servers;
        let drained: Vec<bool> = servers.values().map(|s| s.drain).collect();
        assert_eq!(drained, [false, true]);
        assert!(plan.instances[1].notes[0].contains("drained"));
    }

    #[test]
    fn solve_handles_edges() {
        // No weight elsewhere: the canaries carry everything anyway.
        assert_eq!(solve(20, 1, 0, 0, &[]).weight, 1);
        // 99 % of one server of weight 256 cannot be met; it comes closest.
        let s = solve(99, 1, 256, 256, &[]);
        assert_eq!((s.k, s.weight), (1, 256));
        assert!((s.achieved - 50.0).abs() < 0.1);
    }
}
