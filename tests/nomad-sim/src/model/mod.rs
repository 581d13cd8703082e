//! Nomad's objects as the server stores them: jobs, allocations, service
//! registrations, deployments and the per-alloc simulated nodes.

pub(crate) mod allocs;
pub(crate) mod checks;
pub(crate) mod deployments;
pub(crate) mod jobs;
pub(crate) mod registrations;

use serde_json::{Map, Value};

/// `obj[key]` as a string, or "".
pub(crate) fn str_field<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `obj[key]` as an array slice (empty when missing or not an array).
pub(crate) fn array_field<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Inserts `value` under `key` unless the key is present and non-null.
pub(crate) fn default_field(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// Inserts `value` under `key` unless the key is present (null is kept).
pub(crate) fn default_present(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value);
    }
}
