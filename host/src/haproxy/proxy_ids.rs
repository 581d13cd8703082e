//! The IDs the next worker will give the managed backends, for the state file.
//!
//! HAProxy numbers proxies without an `id` in declaration order, and the
//! managed file comes last, in name order. A state-file line whose backend
//! ID differs from the running one still applies (by name), but HAProxy
//! logs a warning for each such line; adding one backend shifts the IDs of
//! those after it, so without this every reload would warn about most lines.
//! A wrong guess (the operator's config changed since the last reload, or
//! forces IDs past the automatic ones) costs those warnings only.

use std::collections::{BTreeMap, HashMap};

/// Predicts each backend of `next` (the file the reload loads) from `show
/// stat -1 3 -1` of the running worker, which runs `current`.
pub fn predict<T, U>(
    stat: &str,
    current: &BTreeMap<String, T>,
    next: &BTreeMap<String, U>,
) -> BTreeMap<String, u32> {
    let running: HashMap<&str, u32> = stat
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            Some((*fields.first()?, fields.get(27)?.parse().ok()?))
        })
        .collect();
    // The first managed backend keeps its ID while the operator's config
    // stays as it is; with none yet, the managed file starts after the
    // operator's last proxy.
    let first = current
        .keys()
        .enumerate()
        .find_map(|(i, name)| running.get(name.as_str())?.checked_sub(i as u32));
    let base = first.unwrap_or_else(|| {
        running
            .iter()
            .filter(|(name, _)| !current.contains_key(**name))
            .map(|(_, id)| id.saturating_add(1))
            .max()
            .unwrap_or(1)
    });
    next.keys()
        .enumerate()
        .map(|(i, name)| (name.clone(), base.saturating_add(i as u32)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(rows: &[(&str, &str, u32)]) -> String {
        let mut text = String::from("# pxname,svname,...\n");
        for (px, sv, iid) in rows {
            let mut fields = vec![""; 30];
            fields[0] = px;
            fields[1] = sv;
            let iid = iid.to_string();
            fields[27] = &iid;
            text.push_str(&fields.join(","));
            text.push('\n');
        }
        text
    }

    fn names(list: &[&str]) -> BTreeMap<String, ()> {
        list.iter().map(|n| (n.to_string(), ())).collect()
    }

    #[test]
    fn managed_backends_follow_the_operators_proxies_in_name_order() {
        let running = stat(&[("fe", "FRONTEND", 2), ("ops", "BACKEND", 3)]);
        let ids = predict(&running, &names(&[]), &names(&["b", "a"]));
        assert_eq!(ids, BTreeMap::from([("a".into(), 4), ("b".into(), 5)]));
    }

    #[test]
    fn a_new_backend_shifts_those_after_it() {
        let running = stat(&[
            ("fe", "FRONTEND", 2),
            ("b", "BACKEND", 3),
            ("d", "BACKEND", 4),
        ]);
        let ids = predict(&running, &names(&["b", "d"]), &names(&["b", "c", "d"]));
        assert_eq!(
            ids,
            BTreeMap::from([("b".into(), 3), ("c".into(), 4), ("d".into(), 5)])
        );
    }
}
