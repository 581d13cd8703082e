//! The domain part of `diff`: map entries to add, repoint or remove so that HAProxy's maps equal `Desired::domains`.
//!
//! The actual side is what HAProxy holds (`show map`), not what the driver
//! last wrote, so an entry an operator deleted or added at runtime is
//! repaired by the next pass. The connector owns its three map files
//! whole: an entry nobody claims is removed.

use super::super::change::{ChangeSet, DomainAction, DomainChange, Refusal};
use super::super::model::{Actual, Desired, DomainMap, DomainMatch};
use crate::vocab::domains::{domain_key, removal_key};
use std::collections::BTreeSet;

/// Diffs the domain entries; `refused` are the backends refused in this
/// pass (an entry must never route to them).
pub(super) fn domains(
    desired: &Desired,
    actual: &Actual,
    refused: &BTreeSet<String>,
    out: &mut ChangeSet,
) {
    for kind in [DomainMatch::Exact, DomainMatch::Prefix, DomainMatch::Regex] {
        let map = actual.domain_maps.get(&kind);
        let mut wanted = BTreeSet::new();
        for ((_, pattern), backend) in desired.domains.iter().filter(|((k, _), _)| *k == kind) {
            let (pattern, backend) = (pattern.clone(), backend.clone());
            if let Err(invalid) = domain_key(kind, &pattern) {
                out.refusals.push(Refusal::InvalidDomain {
                    kind,
                    pattern,
                    backend,
                    reason: invalid.reason.to_string(),
                });
                continue;
            }
            if !desired.backends.contains_key(&backend) || refused.contains(&backend) {
                out.refusals.push(Refusal::DomainBackendUnknown {
                    kind,
                    pattern,
                    backend,
                });
                continue;
            }
            let entries = match map {
                None => {
                    out.refusals.push(Refusal::DomainMapOff {
                        kind,
                        pattern,
                        backend,
                    });
                    continue;
                }
                Some(DomainMap::NotLoaded) => {
                    out.refusals.push(Refusal::DomainMapNotLoaded {
                        kind,
                        pattern,
                        backend,
                    });
                    continue;
                }
                Some(DomainMap::Loaded(entries)) => entries,
            };
            let action = match entries.get(&pattern).map(Vec::as_slice) {
                None | Some([]) => DomainAction::Add(backend),
                Some([have]) if *have == backend => {
                    wanted.insert(pattern);
                    continue;
                }
                Some([_]) => DomainAction::Set(backend),
                Some(_) => DomainAction::Reset(backend),
            };
            wanted.insert(pattern.clone());
            out.domains.push(DomainChange {
                kind,
                pattern,
                action,
            });
        }
        if let Some(DomainMap::Loaded(entries)) = map {
            // A foreign key the socket cannot carry safely is left alone.
            let unwanted = entries
                .keys()
                .filter(|p| !wanted.contains(*p) && removal_key(p).is_ok());
            for pattern in unwanted {
                out.domains.push(DomainChange {
                    kind,
                    pattern: pattern.clone(),
                    action: DomainAction::Remove,
                });
            }
        }
    }
}
