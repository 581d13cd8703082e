#!/usr/bin/env bash
# Builds the Debian package: the binary, its man page (generated from the
# command line), then `cargo deb`. Prints the .deb's path.
#   examples/packaging/build-deb.sh [OUTPUT_DIR] [PROFILE]
# PROFILE is `release` (the default) or `dev` (a quick unoptimised build, for tests).
# HNC_BINARY=PATH packages that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/debian}"
profile="${2:-release}"
command -v cargo-deb >/dev/null || { echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
dir=release
[ "$profile" = dev ] && dir=debug
if [ -n "${HNC_BINARY:-}" ]; then
    # A binary built already (the tests pass theirs): package it as it is.
    mkdir -p "$target/$dir"
    cp "$HNC_BINARY" "$target/$dir/haproxy-nomad-connector"
else
    cargo build --locked -p haproxy-nomad-connector --bin haproxy-nomad-connector --profile "$profile" >&2
fi
"$target/$dir/haproxy-nomad-connector" man --output "$target/$dir/haproxy-nomad-connector.1"
mkdir -p "$out"
cargo deb -p haproxy-nomad-connector --no-build --profile "$profile" --no-strip -o "$out" -q >&2
ls -t "$out"/haproxy-nomad-connector_*.deb | head -n 1
