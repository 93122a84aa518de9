"""rgrpc's client against other implementations' servers: retries (gRFC A6) against grpc-go and
grpc-js servers that fail until grpc-previous-rpc-attempts reaches a number, and the chaos run
with grpc-go servers killed and restarted under load."""

import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, binary, free_port, wait_for_port

GO = ROOT / "target" / "go-interop"
NODE_RETRY = ROOT / "tests" / "node" / "retry-server.js"


def start(cmd, port):
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("peer", ["go", "node"])
def test_retries_against(peer):
    port = free_port()
    cmd = ([str(GO / "retryserver"), f"--port={port}"] if peer == "go"
           else ["node", str(NODE_RETRY), f"--port={port}"])
    server = start(cmd, port)
    try:
        out = subprocess.run([binary("retry-check"), f"--target=http://127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=120)
    finally:
        stop(server)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "7 passed, 0 failed", out.stdout


CHAOS_CONFIG = ('{"loadBalancingConfig":[{"round_robin":{}}],'
                '"methodConfig":[{"name":[{"service":"grpc.testing.TestService"}],'
                '"waitForReady":true,"timeout":"10s",'
                '"retryPolicy":{"maxAttempts":5,"initialBackoff":"0.01s","maxBackoff":"0.1s",'
                '"backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}')


def test_chaos_with_grpc_go_servers():
    """Three grpc-go servers behind round_robin; 10,000 calls at concurrency 50 while one is
    killed (SIGKILL) and restarted, twice. No call fails, and between events the calls spread
    within 20% over the servers alive."""
    ids = ["g1", "g2", "g3"]
    ports = [free_port() for _ in ids]
    cmd = lambda i: [str(GO / "retryserver"), f"--port={ports[i]}", f"--id={ids[i]}"]
    servers = [start(cmd(i), ports[i]) for i in range(3)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
    client = subprocess.Popen(
        [binary("chaos-client"), f"--target={target}", "--calls=10000", "--concurrency=50",
         "--interval_ms=20", f"--service_config_json={CHAOS_CONFIG}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []  # (unix ms, "kill" | "restart", index)
    try:
        for victim in (1, 2):
            time.sleep(1.0)
            stop(servers[victim])
            events.append((time.time() * 1000, "kill", victim))
            time.sleep(0.3)
            servers[victim] = start(cmd(victim), ports[victim])
            events.append((time.time() * 1000, "restart", victim))
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
        for s in servers:
            stop(s)
    lines = out.splitlines()
    assert lines[-1] == "10000 passed, 0 failed", (lines[-1], err[-2000:])
    calls = [(float(t), who) for t, who, _ in (line.split(" ", 2) for line in lines[:-1])]
    calls.sort()
    # Stretches: all alive until the first kill; the victim's down time; after its restart, all
    # alive again from the first call it answers (the reconnection in between is not judged).
    stretches, alive, start_ms, judged = [], set(ids), 0.0, True
    for t, what, i in events:
        stretches.append((start_ms, t, set(alive), judged))
        if what == "kill":
            alive.discard(ids[i])
            start_ms, judged = t, True
        else:
            back = next(ct for ct, who in calls if ct > t and who == ids[i])
            stretches.append((t, back, set(alive), False))
            alive.add(ids[i])
            start_ms, judged = back, True
    stretches.append((start_ms, float("inf"), set(alive), judged))
    for lo, hi, alive_then, judge in stretches:
        counts = {}
        for t, who in calls:
            if lo <= t < hi:
                counts[who] = counts.get(who, 0) + 1
        # A dead server answers nothing; a few of its last answers may be stamped just after
        # the kill by a client worker that ran late on a loaded machine.
        strays = {w: n for w, n in counts.items() if w not in alive_then}
        assert sum(strays.values()) <= 20, (alive_then, counts)
        total = sum(n for w, n in counts.items() if w in alive_then)
        if not judge or total < 300:
            continue
        fair = total / len(alive_then)
        for who in alive_then:
            assert abs(counts.get(who, 0) - fair) <= 0.2 * fair, (alive_then, counts)
