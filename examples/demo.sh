#!/usr/bin/env bash
# The demo (README command 1): installs what is missing (HAProxy, the wasm
# target), builds, then starts the Nomad simulator with examples/jobs/demo.json
# (an http, a tcp and a grpc service), real backends (one healthy and one
# failing per type), a real HAProxy and the connector, and prints HAProxy's
# servers with their check status.
#   examples/demo.sh          keeps running (Ctrl-C stops everything)
#   examples/demo.sh --once   prints the table once the checks have settled, then exits
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/install-deps.sh
cargo build --release --locked -p haproxy-nomad-connector -p hnc-tests --bin haproxy-nomad-connector --bin demo
exec ./target/release/demo "$@"
