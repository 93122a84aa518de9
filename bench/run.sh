#!/usr/bin/env bash
# Unary server benchmark: rgrpc, tonic, grpc-go, C++ gRPC and a bare h2 server (the ceiling), one after another in
# one run, each pinned to core 0, with h2load pinned to core 1. Prints QPS and p99 per scenario
# and our ratios to the others; then the client scale-out benchmark (src/bin/scale-out.rs).
# Machines are noisy: read the ratios, not the absolutes.
#
# rgrpc and tonic run as a user runs them, under tokio's multi-thread runtime (`#[tokio::main]`);
# the bare h2 server, the ceiling, on the current-thread runtime, its fastest. The 16 KiB
# scenario's ceiling echoes a reply as large as the request, as the Greeter does.
#
#   bash bench/run.sh            # all scenarios
#   REQUESTS=100000 ROUNDS=1 bash bench/run.sh
#   RGRPC_RUNTIME=current bash bench/run.sh   # rgrpc on a current-thread runtime instead
set -euo pipefail
cd "$(dirname "$0")"

REQUESTS=${REQUESTS:-200000}
RGRPC_RUNTIME=${RGRPC_RUNTIME:-multi}
TONIC_RUNTIME=${TONIC_RUNTIME:-multi}
runtime_of() {
  case $1 in
    rgrpc) echo "$RGRPC_RUNTIME" ;;
    tonic) echo "$TONIC_RUNTIME" ;;
    *) echo current ;;
  esac
}
if ! command -v h2load >/dev/null; then
  echo "installing h2load (Debian package nghttp2-client)"
  apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null
fi
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/rgrpc-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Pre-encoded request bodies: HelloRequest{name} in a gRPC frame.
python3 - "$work" <<'PY'
import struct, sys
def frame(name):
    body = b"\x0a" + bytes(encode_varint(len(name))) + name
    return b"\x00" + struct.pack(">I", len(body)) + body
def encode_varint(n):
    out = []
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return out
open(f"{sys.argv[1]}/small.bin", "wb").write(frame(b"world"))
open(f"{sys.argv[1]}/16k.bin", "wb").write(frame(b"x" * 16384))
PY

# wait_port PORT: until something listens there (at most 5 s).
wait_port() {
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.1)" 2>/dev/null && return
    sleep 0.05
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run SERVER RUNTIME CONNS STREAMS BODY -> "qps p99_ms"
run() {
  local server=$1 runtime=$2 conns=$3 streams=$4 body=$5 port pid
  port=$(free_port)
  if [ "$server" = go ]; then
    taskset -c 0 "$gogreeter" "$port" &
  elif [ "$server" = cpp ]; then
    taskset -c 0 "$cppgreeter" "$port" &
  else
    taskset -c 0 "$bin" "$server" "$port" "$runtime" &
  fi
  pid=$!
  wait_port "$port"
  local log="$work/$server.log" out
  # A short warm-up, then the measured run.
  taskset -c 1 h2load -c "$conns" -m "$streams" -n 20000 --data="$work/$body" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$port/helloworld.Greeter/SayHello" >/dev/null 2>&1 || true
  out=$(taskset -c 1 h2load -c "$conns" -m "$streams" -n "$REQUESTS" --data="$work/$body" \
    -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$log" \
    "http://127.0.0.1:$port/helloworld.Greeter/SayHello" 2>&1)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local qps succeeded
  qps=$(echo "$out" | sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p')
  succeeded=$(echo "$out" | sed -n 's/.* \([0-9]*\) succeeded.*/\1/p')
  if [ "$succeeded" != "$REQUESTS" ]; then
    echo "$server: only $succeeded of $REQUESTS requests succeeded" >&2
  fi
  local p99
  p99=$(python3 -c '
import sys
d = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
print("%.2f" % (d[int(len(d) * 0.99)] / 1000))' "$log")
  echo "$qps $p99"
}

ROUNDS=${ROUNDS:-3}
# C++ gRPC's Greeter (bench/cpp, on Debian's libgrpc++), the other anchor.
cppgreeter=$(dirname "$bin")/cpp-greeter
if [ ! -x "$cppgreeter" ] || [ cpp/greeter.cc -nt "$cppgreeter" ]; then
  if ! pkg-config --exists grpc++ || ! command -v grpc_cpp_plugin >/dev/null; then
    echo "installing libgrpc++-dev and protobuf-compiler-grpc (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgrpc++-dev protobuf-compiler-grpc >/dev/null
  fi
  gen="$work/cpp"
  mkdir -p "$gen"
  protoc -I proto --cpp_out="$gen" --grpc_out="$gen" \
    --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" proto/helloworld.proto
  # shellcheck disable=SC2046
  g++ -O2 -std=c++17 -I"$gen" cpp/greeter.cc "$gen/helloworld.pb.cc" "$gen/helloworld.grpc.pb.cc" \
    -o "$cppgreeter" $(pkg-config --cflags --libs grpc++ protobuf)
fi
# grpc-go's Greeter (bench/go), an anchor of the unary table.
gogreeter=$(dirname "$bin")/go-greeter
if [ ! -x "$gogreeter" ] || [ go/main.go -nt "$gogreeter" ] || [ go/go.sum -nt "$gogreeter" ]; then
  (cd go && go build -o "$gogreeter" .)
fi
if [ -z "${SECTIONS:-}" ] || [[ " ${SECTIONS:-} " == *" server "* ]]; then
echo "servers interleaved over $ROUNDS rounds per scenario; medians shown;" \
  "runtimes: h2 current, tonic $TONIC_RUNTIME, rgrpc $RGRPC_RUNTIME"
printf '%-16s %-8s %12s %9s   %s\n' scenario server QPS p99_ms "QPS of each round"
for scenario in "4x100 4 100 small.bin h2" "1x100 1 100 small.bin h2" \
  "16KiB-request 4 100 16k.bin h2-echo"; do
  set -- $scenario
  # SCENARIOS="4x100 16KiB-request" runs only those.
  if [ -n "${SCENARIOS:-}" ] && [[ " $SCENARIOS " != *" $1 "* ]]; then continue; fi
  name=$1 conns=$2 streams=$3 body=$4 ceiling=$5
  declare -A qps=() p99=()
  for round in $(seq "$ROUNDS"); do
    for server in "$ceiling" tonic go cpp rgrpc; do
      key=${server%-echo}
      read -r q p < <(run "$server" "$(runtime_of "$server")" "$conns" "$streams" "$body")
      qps[$key]="${qps[$key]:-} $q"
      p99[$key]="${p99[$key]:-} $p"
    done
  done
  python3 - "$name" "${qps[h2]}" "${qps[tonic]}" "${qps[go]}" "${qps[cpp]}" "${qps[rgrpc]}" "${p99[h2]}" "${p99[tonic]}" "${p99[go]}" "${p99[cpp]}" "${p99[rgrpc]}" <<'PY'
import statistics, sys
name = sys.argv[1]
servers = ["h2", "tonic", "go", "cpp", "rgrpc"]
qps = {s: [float(x) for x in sys.argv[2 + i].split()] for i, s in enumerate(servers)}
p99 = {s: [float(x) for x in sys.argv[7 + i].split()] for i, s in enumerate(servers)}
med = {s: statistics.median(qps[s]) for s in servers}
for s in servers:
    rounds = " ".join("%.0f" % q for q in qps[s])
    print("%-16s %-8s %12.0f %9.2f   %s" % (name, s, med[s], statistics.median(p99[s]), rounds))
p99m = {s: statistics.median(p99[s]) for s in servers}
print("%-16s rgrpc/h2 = %.2f   rgrpc/tonic = %.2f   rgrpc/grpc-go = %.2f   rgrpc/C++ = %.2f   tonic/h2 = %.2f   p99 rgrpc/h2 = %.2f"
      % (name, med["rgrpc"] / med["h2"], med["rgrpc"] / med["tonic"], med["rgrpc"] / med["go"],
         med["rgrpc"] / med["cpp"], med["tonic"] / med["h2"], p99m["rgrpc"] / max(p99m["h2"], 1e-9)))
PY
done
fi

# SECTIONS="server client loadgen" runs only those.
want() { [ -z "${SECTIONS:-}" ] || [[ " $SECTIONS " == *" $1 "* ]]; }

# start_server NAME -> sets server_pid and server_port (pinned to core 0)
start_server() {
  server_port=$(free_port)
  taskset -c 0 "$bin" "$1" "$server_port" "$(runtime_of "$1")" &
  server_pid=$!
  wait_port "$server_port"
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }
# proc_cpu PID -> "USER_SECONDS SYSTEM_SECONDS" of a process (all its threads) so far.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print $12 / hz, $13 / hz }' "/proc/$1/stat"; }
median() { python3 -c 'import statistics,sys; m = statistics.median(float(x) for x in sys.argv[1:]); print("%.0f" % m if m >= 100 else "%.2f" % m)' "$@"; }

if want client; then
  echo
  echo "client: our generated client and tonic's against the bare h2 server, each under the"
  echo "multi-thread runtime on core 1; ${CLIENT_SECONDS:-3} s per run, $ROUNDS rounds, medians"
  printf '%-8s %-8s %12s %9s\n' shape client QPS p99_ms
  start_server h2
  for shape in "1x100 1 100" "4x100 4 100"; do
    set -- $shape
    declare -A cq=() cp=()
    for round in $(seq "$ROUNDS"); do
      for client in tonic rgrpc; do
        read -r q p < <(taskset -c 1 "$(dirname "$bin")/client" "$client" "127.0.0.1:$server_port" "$2" "$3" "${CLIENT_SECONDS:-3}")
        cq[$client]="${cq[$client]:-} $q"; cp[$client]="${cp[$client]:-} $p"
      done
    done
    for client in tonic rgrpc; do
      printf '%-8s %-8s %12s %9s\n' "$1" "$client" "$(median ${cq[$client]})" "$(median ${cp[$client]})"
    done
    python3 -c 'import sys; print("%-8s rgrpc/tonic = %.2f   (target >= 1.5)" % (sys.argv[1], float(sys.argv[2]) / float(sys.argv[3])))' \
      "$1" "$(median ${cq[rgrpc]})" "$(median ${cq[tonic]})"
  done
  stop_server
fi

if want loadgen; then
  echo
  echo "load generators against the bare h2 server: rgrpc bench, h2load and ghz (v0.93.0), each on core 1,"
  echo "4 connections x 100 calls in flight, $REQUESTS calls, $ROUNDS rounds, medians"
  (cd .. && cargo build --release --quiet -p rgrpc-cli)
  cli=$(cd .. && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/rgrpc
  gobin=$(dirname "$bin")/go-bin
  if [ ! -x "$gobin/ghz" ]; then
    mkdir -p "$gobin"
    (cd "$work" && GOBIN=$(cd "$gobin" && pwd) go install github.com/bojand/ghz/cmd/ghz@v0.93.0)
  fi
  start_server h2
  declare -A lq=()
  for round in $(seq "$ROUNDS"); do
    q=$(taskset -c 1 h2load -c 4 -m 100 -n "$REQUESTS" --data="$work/small.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$server_port/helloworld.Greeter/SayHello" 2>&1 \
      | sed -n 's/.*finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p')
    lq[h2load]="${lq[h2load]:-} $q"
    q=$(taskset -c 1 "$cli" bench "http://127.0.0.1:$server_port" helloworld.Greeter/SayHello \
      --proto helloworld.proto -I proto -d '{"name":"world"}' --connections 4 --concurrency 400 \
      -n "$REQUESTS" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rps"])')
    lq[rgrpc]="${lq[rgrpc]:-} $q"
    q=$(taskset -c 1 "$gobin/ghz" --insecure --proto proto/helloworld.proto \
      --call helloworld.Greeter/SayHello -d '{"name":"world"}' --connections 4 -c 400 \
      -n "$REQUESTS" --format json "127.0.0.1:$server_port" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["rps"])')
    lq[ghz]="${lq[ghz]:-} $q"
  done
  stop_server
  for g in h2load rgrpc ghz; do printf '  %-12s %12s calls/s   rounds:%s\n' "$g" "$(median ${lq[$g]})" "${lq[$g]}"; done
  python3 -c 'import sys; r, h, g = map(float, sys.argv[1:]); print("  rgrpc bench / h2load = %.2f (target >= 0.8)   rgrpc bench / ghz = %.2f (target >= 2)" % (r / h, r / g))' \
    "$(median ${lq[rgrpc]})" "$(median ${lq[h2load]})" "$(median ${lq[ghz]})"
fi

declare -A gib=()
if want streaming; then
  echo
  echo "streaming: messages per second of one call for ${STREAM_SECONDS:-2} s, server on core 0 and client on core 1,"
  echo "every pairing of our server and client with tonic's (server/client), both under the multi-thread runtime"
  sbin=$(dirname "$bin")/stream
  printf '%-16s %14s %14s %14s %14s\n' shape rgrpc/rgrpc tonic/tonic rgrpc/tonic tonic/rgrpc
  for shape in "download 1024" "download 65536" "echo 1024" "echo 65536"; do
    set -- $shape
    declare -A sq=() scpu=()
    for server in rgrpc tonic; do
      server_port=$(free_port)
      taskset -c 0 "$sbin" serve "$server" "$server_port" &
      server_pid=$!
      wait_port "$server_port"
      for client in rgrpc tonic; do
        before=$(proc_cpu "$server_pid")
        read -r rate _ cu cs < <(taskset -c 1 "$sbin" drive "$client" "127.0.0.1:$server_port" "$1" "$2" "${STREAM_SECONDS:-2}")
        after=$(proc_cpu "$server_pid")
        sq[$server/$client]=$rate
        # CPU seconds during the run: server user, server system, client user, client system.
        scpu[$server/$client]="$(python3 -c 'import sys; a, b = map(str.split, sys.argv[1:3]); print(" ".join("%.2f" % (float(y) - float(x)) for x, y in zip(a, b)))' "$before" "$after") $cu $cs"
      done
      stop_server
    done
    printf '%-16s %14s %14s %14s %14s\n' "$1 $2B" "${sq[rgrpc/rgrpc]}" "${sq[tonic/tonic]}" "${sq[rgrpc/tonic]}" "${sq[tonic/rgrpc]}"
    python3 -c 'import sys; oo, tt, ot, to = map(float, sys.argv[2:]); print("%-16s ours/tonic = %.2f   server role (their client) = %.2f   client role (their server) = %.2f   (target >= 1.5)" % (sys.argv[1], oo / tt, ot / tt, to / tt))' \
      "$1 $2B" "${sq[rgrpc/rgrpc]}" "${sq[tonic/tonic]}" "${sq[rgrpc/tonic]}" "${sq[tonic/rgrpc]}"
    # What the kernel leaves: were user time zero, a side could do at most one core of system
    # time, so our pair's rate is capped at rate x seconds / (the busier side's system seconds).
    python3 - "$1 $2B" "${STREAM_SECONDS:-2}" "${sq[rgrpc/rgrpc]}" "${sq[tonic/tonic]}" ${scpu[rgrpc/rgrpc]} ${scpu[tonic/tonic]} <<'PY'
import sys
name, secs, oo, tt = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ou, os_, cu, cs, tu, ts, tcu, tcs = map(float, sys.argv[5:13])
share = lambda u, s: 100 * s / max(u + s, 1e-9)
cap = oo * secs / max(os_, cs, 1e-9) / tt
print("%-16s system share of CPU, server/client: ours %.0f%%/%.0f%%, tonic %.0f%%/%.0f%%; "
      "at our kernel cost per message, zero user time would cap ours/tonic at %.2f"
      % (name, share(ou, os_), share(cu, cs), share(tu, ts), share(tcu, tcs), cap))
PY
  done
  echo "one 1 GiB server stream of 64 KiB messages, read by our client (seconds, MiB/s):"
  for server in h2-stream rgrpc; do
    server_port=$(free_port)
    if [ "$server" = h2-stream ]; then
      taskset -c 0 "$bin" h2-stream "$server_port" current &
    else
      taskset -c 0 "$sbin" serve rgrpc "$server_port" &
    fi
    server_pid=$!
    wait_port "$server_port"
    read -r secs mib < <(taskset -c 1 "$sbin" gib "127.0.0.1:$server_port")
    stop_server
    printf '  %-10s %8s s %8s MiB/s\n' "$server" "$secs" "$mib"
    gib[$server]=$mib
  done
  python3 -c 'import sys; print("  rgrpc / bare h2 = %.2f   (target >= 0.8)" % (float(sys.argv[1]) / float(sys.argv[2])))' "${gib[rgrpc]}" "${gib[h2-stream]}"
fi

if want memory; then
  echo
  echo "server memory (RSS growth) per idle connection and per open idle stream, KiB:"
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  sbin=$(dirname "$bin")/stream
  declare -A mem=()
  printf '  %-8s %12s %12s %12s\n' server connections per_conn per_stream
  for n in 1000 10000; do
    for server in rgrpc tonic; do
      server_port=$(free_port)
      taskset -c 0 "$sbin" serve "$server" "$server_port" &
      server_pid=$!
      wait_port "$server_port"
      read -r c st < <(taskset -c 1 "$(dirname "$bin")/memory" "$server_pid" "127.0.0.1:$server_port" "$n")
      stop_server
      mem[$server/$n]="$c $st"
      printf '  %-8s %12s %12s %12s\n' "$server" "$n" "$c" "$st"
    done
    python3 -c 'import sys; oc, os_, tc, ts = map(float, sys.argv[2:]); print("  %s connections: rgrpc/tonic per connection = %.2f, per stream = %.2f   (target <= 1)" % (sys.argv[1], oc / max(tc, 1e-9), os_ / max(ts, 1e-9)))' \
      "$n" ${mem[rgrpc/$n]} ${mem[tonic/$n]}
  done
fi

if want allocs; then
  echo
  "$(dirname "$bin")/allocs" 20000
fi

if want scale-out; then
  echo
  echo "client scale-out (round_robin against a direct connection; hedging's p99):"
  "$(dirname "$bin")/scale-out" "${SCALE_OUT_SECONDS:-3}"
fi

if want churn; then
  echo
  echo "connection churn: 8 loops on core 1 each connecting, making one call and closing, ${CHURN_SECONDS:-2} s;"
  echo "our server on core 0 with its worker (sockets handed over) and with RGRPC_WORKERS=0 (served where accepted)"
  for workers in default 0; do
    server_port=$(free_port)
    if [ "$workers" = default ]; then
      taskset -c 0 "$bin" rgrpc "$server_port" multi &
    else
      RGRPC_WORKERS=0 taskset -c 0 "$bin" rgrpc "$server_port" multi &
    fi
    server_pid=$!
    wait_port "$server_port"
    rate=$(taskset -c 1 "$(dirname "$bin")/churn" "127.0.0.1:$server_port" 8 "${CHURN_SECONDS:-2}")
    stop_server
    printf '  workers %-8s %8s connections/s\n' "$workers" "$rate"
  done
fi
