#!/usr/bin/env bash
# Instructions per warm mapping call, per built-in, wasm vs native, counted by
# callgrind: unlike times, these do not move with the machine's noise, so two
# builds can be compared across runs. Each figure is the difference between
# runs of 2N and N calls divided by N, which cancels start-up (loading the
# plugins). Needs valgrind (apt-get install -y valgrind).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install -y valgrind" >&2; exit 1; }
n=${CALLS:-2000}
bench=$(cargo bench -p haproxy-nomad-connector --bench mapping --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "mapping" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # spec calls -> instructions
    MAPPING_CALLS="$1:$2${3:+:$3}" valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bench" 2>&1 |
        sed -n 's/.*Collected : //p' | tr -d ,
}
per_call() { # builtin [native]
    local a b
    a=$(count "$1" "$n" "${2:-}")
    b=$(count "$1" $((2 * n)) "${2:-}")
    echo $(((b - a) / n))
}
echo "instructions per warm mapping call ($n calls)   wasm   native   ratio"
for b in http tcp grpc script; do
    w=$(per_call "$b")
    v=$(per_call "$b" native)
    printf '  %-40s %7d %8d %6.1fx\n' "$b" "$w" "$v" "$(awk -v w="$w" -v v="$v" 'BEGIN { print w / v }')"
done
