#!/usr/bin/env bash
# Figures of the HAProxy driver on every HAProxy at hand, in one run: the
# `haproxy` on PATH (Debian's 2.6 on the CI machine), then each
# <dir>/<version>/haproxy under the directories listed in HNC_HAPROXY_DIRS
# (colon-separated; by default ../shared/haproxy beside the repository, as
# tests/run.sh uses), each put first on PATH for its run. Per version:
# `servers` (default 1,000) checked adds through the driver vs the same
# commands sent raw (ms, ratio), and a check change on that backend (reloads
# counted, apply time); a table of every version ends the output.
#
#   tests/bench/haproxy-versions.sh [servers] [rounds]
#
# Needs the release build:
#   cargo build --release --locked -p haproxy-nomad-connector -p hnc-tests
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
bench="$repo/target/release/bench-haproxy"
if [ ! -x "$bench" ]; then
    echo "haproxy-versions.sh: $bench is missing; build it first:" >&2
    echo "  cargo build --release --locked -p haproxy-nomad-connector -p hnc-tests" >&2
    exit 1
fi
servers="${1:-1000}"
rounds="${2:-5}"
IFS=: read -r -a parents <<< "${HNC_HAPROXY_DIRS:-../shared/haproxy}"
dirs=()
for parent in "${parents[@]}"; do
    for bin in "$parent"/*/haproxy; do
        if [ -x "$bin" ]; then dirs+=("$(cd "$(dirname "$bin")" && pwd)"); fi
    done
done
echo "haproxy-versions.sh: $servers servers, $rounds rounds, on:"
echo "  PATH: $(haproxy -v | head -n 1)"
for dir in "${dirs[@]}"; do
    echo "  $dir: $("$dir/haproxy" -v | head -n 1)"
done
if [ ${#dirs[@]} -eq 0 ]; then
    echo "  (no <version>/haproxy under ${HNC_HAPROXY_DIRS:-../shared/haproxy}: only the haproxy on PATH)"
    # Run where bench-haproxy finds no versions of its own to add.
    cd "$(mktemp -d)"
    exec "$bench" "$servers" "$rounds"
fi
exec "$bench" "$servers" "$rounds" "${dirs[@]}"
