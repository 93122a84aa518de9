#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: it installs what the tests need (a Python
# venv with pinned grpcio, pinned npm packages, Debian's nginx), then checks formatting, lints and
# docs and runs every test.
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

step "node peers (@grpc/grpc-js, pinned in tests/node/package-lock.json)"
lock_stamp=tests/node/node_modules/.lock.sha256
want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want" ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$lock_stamp"
fi

step "nginx (Debian package)"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ]; then apt_get() { apt-get "$@"; }; else apt_get() { sudo apt-get "$@"; }; fi
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq nginx >/dev/null
fi

step "rust tests"
cargo test --workspace

step "binaries the cross-implementation tests run"
cargo build --workspace --bins

step "interop: Python grpcio both directions, tutorial twins, grpc-js, nginx"
.venv/bin/python -m pytest -q tests/python
