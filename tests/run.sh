#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then runs them.
#   - HAProxy 2.6 (Debian's package): the integration tests start their own.
#   - the wasm32-unknown-unknown target: the built-in plugins are built from source.
#
# Then the version matrix: the modules that drive a real HAProxy run again
# with each HAProxy 3.x binary of ../shared/haproxy/<version>/ first on PATH
# (the tests and the connector's `haproxy -c` both start `haproxy` from PATH).
# They are the modules whose outcome depends on what HAProxy does; their
# times on HAProxy 3.4, measured on the 2-core CI machine under load
# (cargo test's default threads):
#   driver          runtime API replies, reloads, maps, removals   22 s
#   e2e             the daemon against Nomad and HAProxy           13 s
#   faults          HAProxy and Nomad failures and recoveries      42 s
#   fidelity        HAProxy's check verdicts against Nomad's        9 s
#   builtin_checks  each built-in check mapping, checked live       4 s
# About 1.5 min per version, 5 min for three (fidelity growing 1.5x or
# even 10x adds at most 4 min more), so all of them run on every version
# and CI (about 27 min before the matrix) stays near 35 min, well inside
# 90. The other modules (golden renders, the Nomad client, the plugin
# sandbox, properties) never start HAProxy: a second run would test nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export HNC_TEST_DEPS=1
source tests/install-deps.sh
cargo test --workspace --locked "$@"

MATRIX=(driver:: e2e:: faults:: fidelity:: builtin_checks::)
shared=../shared/haproxy
binaries=()
for bin in "$shared"/*/haproxy; do
    if [ -x "$bin" ]; then binaries+=("$bin"); fi
done
if [ ${#binaries[@]} -eq 0 ]; then
    echo "tests/run.sh: no HAProxy binaries in $shared/<version>/haproxy; the runs on HAProxy 3.x are skipped"
    exit 0
fi
for bin in "${binaries[@]}"; do
    dir="$(cd "$(dirname "$bin")" && pwd)"
    echo "tests/run.sh: $("$bin" -v | head -n 1): ${MATRIX[*]}"
    PATH="$dir:$PATH" cargo test --locked -p hnc-tests --test integration -- "${MATRIX[@]}"
done
