#!/usr/bin/env bash
# The demo (README command 1). Until the daemon exists it prints the offline
# mapping of examples/jobs/demo.json: an http, a tcp and a grpc service.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/install-deps.sh
cargo build --release --locked -p haproxy-nomad-connector
./target/release/haproxy-nomad-connector map --job examples/jobs/demo.json "$@"
