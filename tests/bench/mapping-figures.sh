#!/usr/bin/env bash
# Runs the mapping benchmarks and prints the figures of the mapping-engine
# issue: warm call wasm vs native per built-in (ratio from one run), and
# plugin load, compiling vs the cached artifact.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench -p haproxy-nomad-connector --bench mapping -- "$@" >&2
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("target/criterion")
def ns(group, name):
    p = root / group / name / "new" / "estimates.json"
    return json.loads(p.read_text())["median"]["point_estimate"] if p.exists() else None
print("warm mapping call (median)      wasm       native    ratio")
for b in ["http", "tcp", "grpc", "script"]:
    w, n = ns(f"warm_call_{b}", "wasm"), ns(f"warm_call_{b}", "native")
    if w and n:
        print(f"  {b:<28} {w/1000:7.2f} µs {n/1000:7.2f} µs {w/n:6.1f}x")
e = ns("engine_map", "http")
if e: print(f"engine.map(http): tags + plugin + render  {e/1000:.2f} µs")
c, k, v = ns("plugin_load", "compile"), ns("plugin_load", "cached"), ns("plugin_load", "cached_and_validated")
if c and k:
    print(f"plugin load: compile {c/1e6:.2f} ms, cached artifact {k/1e3:.1f} µs ({c/k:.0f}x faster)")
if v: print(f"plugin load from cache incl. import check, InstancePre and info(): {v/1e3:.1f} µs")
PY
