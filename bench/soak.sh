#!/usr/bin/env bash
# Soak (not a CI test): the Soak server with the default configuration under 10,000,000 unary
# calls, then 1,000,000 messages on bidi streams, then 100,000 calls of every kind cancelled or
# timed out at random points, all over 100 connections (src/bin/soak.rs). The server samples its
# RSS, open file descriptors and live tasks every second; this script plots them to
# target/soak/soak.png and checks that after warm-up each stays within 10% through the unary
# calls, that streams and storm run a second time add nothing (within 10%), and that once the
# load has gone, the descriptors and tasks are back where they started.
#
#   bash bench/soak.sh                 # the full run (a few minutes)
#   bash bench/soak.sh 1000000 100000 10000
set -euo pipefail
cd "$(dirname "$0")"
unary=${1:-10000000}
streamed=${2:-1000000}
storm=${3:-100000}
cargo build --release --quiet --bin soak
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release/soak
out=$target/soak
mkdir -p "$out"
if [ ! -x "$out/venv/bin/python" ]; then
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install --quiet --disable-pip-version-check matplotlib==3.9.2
fi

fifo=$out/stdin
rm -f "$fifo"
mkfifo "$fifo"
"$bin" serve <"$fifo" >"$out/server.log" &
server=$!
exec 7>"$fifo"
trap 'exec 7>&-; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  grep -q '^listening on' "$out/server.log" && break
  sleep 0.1
done
addr=$(awk '/^listening on/ {print $3}' "$out/server.log")
sleep 3 # the idle baseline
"$bin" load "$addr" "$unary" "$streamed" "$storm" | tee "$out/load.log"
sleep 5 # after the storm, with every connection closed
exec 7>&-
wait $server || true
trap - EXIT

"$out/venv/bin/python" - "$out" <<'PY'
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = Path(sys.argv[1])
samples = [tuple(float(x) for x in line.split()[1:5])
           for line in (out / "server.log").read_text().splitlines() if line.startswith("sample ")]
phases = {}
for line in (out / "load.log").read_text().splitlines():
    if line.startswith("phase "):
        _, name, start, end = line.split()
        phases[name] = (float(start), float(end))
t0 = samples[0][0]
load_start, load_end = phases["unary"][0], phases["repeat"][1]
warm = load_start + min(10.0, (phases["unary"][1] - load_start) / 5)
before = [s for s in samples if s[0] < load_start]
unary = [s for s in samples if warm <= s[0] <= phases["unary"][1]]
after = [s for s in samples if s[0] > load_end + 2]


def at(t):
    """The last sample at or before t."""
    return [s for s in samples if s[0] <= t][-1]


names = ["RSS (KiB)", "open file descriptors", "live tasks"]
ok = True
print(f"{len(samples)} samples; load {load_end - load_start:.0f} s: "
      + ", ".join(f"{n} {e - s:.1f} s" for n, (s, e) in phases.items()))
for i, name in enumerate(names, start=1):
    values = [s[i] for s in unary]
    lo, hi = min(values), max(values)
    spread = (hi - lo) / hi if hi else 0.0
    flat = spread <= 0.10
    ok &= flat
    first, second = at(phases["storm"][1])[i], at(phases["repeat"][1])[i]
    grew = second > first * 1.10
    ok &= not grew
    line = (f"{name}: idle {before[-1][i]:.0f}; {len(values)} s of unary calls after warm-up "
            f"{lo:.0f}..{hi:.0f} ({spread:.1%}, {'flat' if flat else 'NOT flat'}); after the "
            f"storm {first:.0f}, after streams and storm again {second:.0f} "
            f"({'grew' if grew else 'no growth'}); load gone {after[-1][i]:.0f}")
    if i > 1:
        back = after[-1][i] == before[-1][i]
        ok &= back
        line += " (back to idle)" if back else " (NOT back to idle)"
    print(line)
fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
for i, (ax, name) in enumerate(zip(axes, names), start=1):
    ax.plot([s[0] - t0 for s in samples], [s[i] for s in samples], lw=1.2)
    ax.set_ylabel(name)
    ax.set_ylim(bottom=0)
    for n, (s, e) in phases.items():
        colour = {"unary": "C0", "streams": "C1", "storm": "C3", "repeat": "C2"}[n]
        ax.axvspan(s - t0, e - t0, alpha=0.12, color=colour)
    ax.axvline(warm - t0, color="grey", ls=":", lw=1)
axes[0].set_title("rgrpc soak: unary (blue), streams (orange), cancel/timeout storm (red), "
                  "both again (green)", fontsize=10)
axes[-1].set_xlabel("seconds")
fig.tight_layout()
fig.savefig(out / "soak.png", dpi=100)
print(f"plot: {out / 'soak.png'}")
sys.exit(0 if ok else 1)
PY
