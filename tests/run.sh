#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then runs them.
#   - HAProxy 2.6 (Debian's package): the integration tests start their own.
#   - the wasm32-unknown-unknown target: the built-in plugins are built from source.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/install-deps.sh
cargo test --workspace --locked "$@"
