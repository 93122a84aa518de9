"""grpc-go's client with an aggressive keepalive against our server's PING policy (grpc-go's
KeepaliveEnforcementPolicy semantics): PINGs every 10 s against a minimum of 15 s earn GOAWAY
ENHANCE_YOUR_CALM "too_many_pings" on the third strike; grpc-go logs it, doubles its keepalive
time to 20 s, and its next connection is left alone. Takes about 100 s: grpc-go will not PING
more often than every 10 s."""

import json
import subprocess

from conftest import ROOT, binary, free_port, wait_for_port

PINGCLIENT = ROOT / "target" / "go-interop" / "pingclient"


def test_grpc_go_backs_off_on_too_many_pings():
    port = free_port()
    server = subprocess.Popen(
        [binary("echo-server"), "--addr", f"127.0.0.1:{port}",
         "--ping-min-time-ms", "15000", "--permit-pings-without-calls"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        out = subprocess.run([str(PINGCLIENT), f"--addr=127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=180)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["errors"] == [] and seen["calls_ok"] == 3, seen
    # One GOAWAY too_many_pings, on the first connection, after three early PINGs (20-45 s in).
    assert len(seen["too_many_pings"]) == 1, seen
    assert 15 <= seen["too_many_pings"][0] <= 45, seen
    # A second connection for the call after it, and no third: at 20 s, its PINGs keep within
    # the policy (without the doubling it would have been sent away about 40 s later).
    assert len(seen["dials"]) == 2, seen
    assert seen["dials"][1] > seen["too_many_pings"][0], seen
