#!/usr/bin/env bash
# Builds the xDS control plane (go-control-plane, pinned in tests/xds/go.mod) and grpc-go's xDS
# client into target/go-xds, unless the sources are unchanged since the last build. The test
# command and bench/run.sh both use them.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=target/go-xds/.go.sum.sha256
want=$(cat tests/xds/go.mod tests/xds/go.sum tests/xds/controlplane/*.go tests/xds/xdsclient/*.go | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x target/go-xds/controlplane ] \
  || [ ! -x target/go-xds/xdsclient ]; then
  mkdir -p target/go-xds
  (cd tests/xds && go build -o ../../target/go-xds/ ./controlplane ./xdsclient)
  echo "$want" > "$stamp"
fi
