#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: it installs what the tests need (a Python
# venv with pinned grpcio, pinned npm packages, Debian's nginx, the official grpc-go interop
# programs from the Go module proxy, grpc-java's from Maven Central), then checks formatting,
# lints and docs and runs every test, then the interop matrix and the Connect conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "rgrpc feature combinations (each additive feature alone, none, all)"
for features in "--no-default-features" "--no-default-features --features gzip" \
  "--no-default-features --features deflate" "--no-default-features --features zstd" \
  "--no-default-features --features tls" "--no-default-features --features tower" \
  "--all-features"; do
  # shellcheck disable=SC2086
  cargo clippy --quiet -p rgrpc $features -- -D warnings
done

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

step "node peers (@grpc/grpc-js, playwright-core; pinned in tests/node/package-lock.json)"
lock_stamp=tests/node/node_modules/.lock.sha256
want=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$want" ]; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$lock_stamp"
fi

step "nginx and chromium (Debian packages)"
need=()
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then need+=(nginx); fi
if [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt_get() { apt-get "$@"; }; else apt_get() { sudo apt-get "$@"; }; fi
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq "${need[@]}" >/dev/null
fi

step "grpc-go interop programs (pinned in tests/go/go.mod), our grpc-go retry server and PING client"
go_stamp=target/go-interop/.go.sum.sha256
want=$(cat tests/go/go.mod tests/go/go.sum tests/go/retryserver/*.go tests/go/pingclient/*.go | sha256sum | cut -d' ' -f1)
if [ "$(cat "$go_stamp" 2>/dev/null)" != "$want" ] || [ ! -x target/go-interop/client ] \
  || [ ! -x target/go-interop/retryserver ] || [ ! -x target/go-interop/pingclient ]; then
  mkdir -p target/go-interop
  (cd tests/go && go build -o ../../target/go-interop/ \
    google.golang.org/grpc/interop/client google.golang.org/grpc/interop/server ./retryserver \
    ./pingclient)
  echo "$want" > "$go_stamp"
fi

step "the xDS control plane (go-control-plane, pinned in tests/xds/go.mod) and grpc-go's xDS client"
scripts/go-xds.sh

step "grpc-java interop programs (pinned in tests/java/pom.xml)"
# The jar of the version the pom pins, not whatever an earlier checkout left (the classpath is the
# whole directory, so a stale one is removed first).
java_version=$(sed -n '/<artifactId>grpc-interop-testing<\/artifactId>/{n;s/.*<version>\(.*\)<\/version>.*/\1/p}' tests/java/pom.xml)
if [ ! -f "tests/java/target/lib/grpc-interop-testing-$java_version.jar" ]; then
  rm -rf tests/java/target/lib
  (cd tests/java && mvn -q -B dependency:copy-dependencies -DoutputDirectory=target/lib)
fi

step "the Connect conformance suite's runner (connectrpc.com/conformance, pinned)"
conformance_version=v1.0.7
conformance=target/go-conformance/connectconformance
if [ "$(cat target/go-conformance/.version 2>/dev/null)" != "$conformance_version" ] \
  || [ ! -x "$conformance" ]; then
  mkdir -p target/go-conformance
  GOBIN="$PWD/target/go-conformance" \
    go install "connectrpc.com/conformance/cmd/connectconformance@$conformance_version"
  echo "$conformance_version" > target/go-conformance/.version
fi

step "rust tests"
cargo test --workspace

step "binaries the cross-implementation tests run"
cargo build --workspace --bins

step "cross-implementation: grpcio both directions, tutorial twins, grpc-js, nginx"
.venv/bin/python -m pytest -q tests/python

step "the interop suite: grpc-go, grpc-java, grpcio, grpc-js and ours, both directions"
.venv/bin/python tests/interop/run.py

step "the Connect conformance suite against our server and our client (tests/conformance/config.yaml; no known failures)"
"$conformance" --conf tests/conformance/config.yaml --mode server -- target/debug/conformance-server
"$conformance" --conf tests/conformance/config.yaml --mode client -- target/debug/conformance-client

# The fuzz targets build and run briefly where a nightly toolchain exists (cargo-fuzz needs it);
# long runs are `fuzz/run.sh SECONDS` by hand.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  step "fuzz targets: build, then 5 seconds each from the committed seeds (fuzz/run.sh)"
  if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.2" ]; then
    cargo install cargo-fuzz --version 0.13.2 --locked
  fi
  fuzz/run.sh 5
else
  step "fuzz targets skipped: no nightly toolchain"
fi
