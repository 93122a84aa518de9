#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: it installs what the tests need (a Python
# venv with pinned grpcio), then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "python peers (grpcio, pinned in tests/python/requirements.txt)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum tests/python/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  echo "$want" > "$stamp"
fi

step "rust tests"
cargo test --workspace

step "binaries the cross-implementation tests run"
cargo build --workspace --bins

step "interop with Python grpcio, both directions"
.venv/bin/python -m pytest -q tests/python
