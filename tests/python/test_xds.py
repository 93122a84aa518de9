"""Proxyless xDS (gRFC A27) against a real control plane: our go-control-plane program
(tests/xds/controlplane) serves snapshots to rgrpc's client (chaos-client with an xds:/// target)
and to grpc-go's own xDS client (tests/xds/xdsclient) side by side; the backends are grpc-go
servers (tests/go/retryserver) that name themselves in x-server-id. Every scenario runs with both
clients, and both must behave the same."""

import json
import subprocess
import time
from collections import Counter

import pytest

from conftest import ROOT, binary, free_port, wait_for_port

GO = ROOT / "target" / "go-interop"
XDS = ROOT / "target" / "go-xds"
CLIENTS = ["rgrpc", "go"]


class ControlPlane:
    """The control plane process: specs go in on stdin, events come out on stdout."""

    def __init__(self, port=0):
        self.proc = subprocess.Popen([str(XDS / "controlplane"), f"--port={port}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["SERVING"], line
        self.port = int(line[1])
        self.events = []
        import threading
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append((time.time() * 1000, line.rstrip("\n")))

    def set(self, spec):
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(e == f"SET {spec['version']}" for _, e in self.events):
                return next(t for t, e in self.events if e == f"SET {spec['version']}")
            time.sleep(0.01)
        raise AssertionError(f"the control plane did not take version {spec['version']}")

    def wait_for(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, e in list(self.events):
                if predicate(e):
                    return e
            time.sleep(0.02)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def bootstrap(tmp_path, cp_port, node):
    path = tmp_path / f"bootstrap-{node}.json"
    path.write_text(json.dumps({
        "xds_servers": [{"server_uri": f"127.0.0.1:{cp_port}",
                         "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node, "locality": {"zone": "z1"}},
    }))
    return path


class Backends:
    def __init__(self, names):
        self.ports, self.procs = {}, {}
        for name in names:
            self.start(name)

    def start(self, name):
        port = free_port()
        proc = subprocess.Popen([str(GO / "retryserver"), f"--port={port}", f"--id={name}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
        self.ports[name], self.procs[name] = port, proc

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def spec(version, clusters, routes=None):
    """A snapshot: clusters {name: [(backend port, locality, priority)]}, routes as the control
    plane takes them (default: everything to the first cluster)."""
    return {
        "version": str(version), "listener": "greeter", "route_name": "greeter-routes",
        "routes": routes or [{"prefix": "/", "clusters": [[next(iter(clusters)), 1]]}],
        "clusters": [{"name": name, "endpoints": [
            {"port": port, "locality": loc, "priority": prio, "weight": 1}
            for port, loc, prio in eps]} for name, eps in clusters.items()],
    }


def run_client(kind, boot, calls, concurrency=10, interval_ms=0, header=None, fail_until=0):
    """Starts one client; returns the process (stdout piped)."""
    env = {"GRPC_XDS_BOOTSTRAP": str(boot), "PATH": "/usr/bin:/bin"}
    args = [f"--target=xds:///greeter", f"--calls={calls}", f"--concurrency={concurrency}",
            f"--interval_ms={interval_ms}"]
    if header:
        args.append(f"--header={header}")
    if fail_until:
        args.append(f"--fail_until={fail_until}")
    if kind == "rgrpc":
        cmd = [binary("chaos-client"), *args, "--wait_for_ready=true"]
    else:
        cmd = [str(XDS / "xdsclient"), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def results(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    lines = out.splitlines()
    assert lines, err
    calls = []
    for line in lines[:-1]:
        ms, rest = line.split(" ", 1)
        calls.append((int(ms), rest))
    return calls, lines[-1], err


@pytest.fixture
def world(tmp_path):
    cp = ControlPlane()
    backends = Backends(["b1", "b2", "b3"])
    yield cp, backends, tmp_path
    cp.stop()
    backends.stop()


@pytest.mark.parametrize("kind", CLIENTS)
def test_calls_spread_over_the_endpoints(world, kind):
    cp, b, tmp = world
    cp.set(spec(1, {"a": [(b.ports[n], "z1", 0) for n in ("b1", "b2", "b3")]}))
    calls, summary, err = results(run_client(kind, bootstrap(tmp, cp.port, kind), 600))
    assert summary == "600 passed, 0 failed", err
    spread = Counter(r.split()[0] for _, r in calls)
    assert set(spread) == {"b1", "b2", "b3"}, spread
    assert min(spread.values()) >= 150, spread


@pytest.mark.parametrize("kind", CLIENTS)
def test_endpoints_added_and_removed_under_load(world, kind):
    cp, b, tmp = world
    b.start("b4")
    eps = lambda names: {"a": [(b.ports[n], "z1", 0) for n in names]}
    cp.set(spec(1, eps(["b1", "b2"])))
    client = run_client(kind, bootstrap(tmp, cp.port, kind), 12000, concurrency=10, interval_ms=5)
    time.sleep(1.5)
    added = cp.set(spec(2, eps(["b1", "b2", "b4"])))
    time.sleep(1.5)
    removed = cp.set(spec(3, eps(["b2", "b4"])))
    calls, summary, err = results(client)
    assert summary == "12000 passed, 0 failed", err
    assert calls[-1][0] > removed + 1000, "the run ended before the removal could be judged"
    first_b4 = min(t for t, r in calls if r.startswith("b4 "))
    assert first_b4 - added < 1000, f"b4 took {first_b4 - added:.0f} ms to get a call"
    last_b1 = max(t for t, r in calls if r.startswith("b1 "))
    assert last_b1 - removed < 1000, f"b1 had calls {last_b1 - removed:.0f} ms after removal"


@pytest.mark.parametrize("kind", CLIENTS)
def test_route_weights_split_80_20(world, kind):
    cp, b, tmp = world
    cp.set(spec(1, {"a": [(b.ports["b1"], "z1", 0)], "b": [(b.ports["b2"], "z1", 0)]},
                routes=[{"prefix": "/", "clusters": [["a", 80], ["b", 20]]}]))
    calls, summary, err = results(run_client(kind, bootstrap(tmp, cp.port, kind), 2000))
    assert summary == "2000 passed, 0 failed", err
    spread = Counter(r.split()[0] for _, r in calls)
    share = spread["b1"] / 2000
    assert 0.75 <= share <= 0.85, spread


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_header_match_routes_to_a_second_cluster(world, kind):
    cp, b, tmp = world
    cp.set(spec(1, {"a": [(b.ports["b1"], "z1", 0)], "b": [(b.ports["b2"], "z1", 0)]},
                routes=[{"prefix": "/", "header": "x-route", "header_exact": "b",
                         "clusters": [["b", 1]]},
                        {"prefix": "/", "clusters": [["a", 1]]}]))
    boot = bootstrap(tmp, cp.port, kind)
    with_header, summary, err = results(run_client(kind, boot, 200, header="x-route:b"))
    assert summary == "200 passed, 0 failed", err
    assert Counter(r.split()[0] for _, r in with_header) == {"b2": 200}
    without, summary, err = results(run_client(kind, boot, 200))
    assert summary == "200 passed, 0 failed", err
    assert Counter(r.split()[0] for _, r in without) == {"b1": 200}


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_nacked_resource_leaves_traffic_untouched(world, kind):
    cp, b, tmp = world
    good = spec(1, {"a": [(b.ports["b1"], "z1", 0)], "b": [(b.ports["b2"], "z1", 0)]})
    cp.set(good)
    client = run_client(kind, bootstrap(tmp, cp.port, kind), 3000, concurrency=5, interval_ms=5)
    time.sleep(1.0)
    bad = spec(2, {"a": [(b.ports["b1"], "z1", 0)], "b": [(b.ports["b2"], "z1", 0)]},
               routes=[{"prefix": "/", "bad_regex": True, "clusters": [["b", 1]]}])
    cp.set(bad)
    nack = cp.wait_for(lambda e: e.startswith(f"NACK {kind} ") and "RouteConfiguration" in e)
    calls, summary, err = results(client)
    assert nack is not None, cp.events
    assert "regex" in nack.lower(), nack
    assert summary == "3000 passed, 0 failed", err
    # The refused route would have sent everything to b2: nothing went there.
    assert Counter(r.split()[0] for _, r in calls) == {"b1": 3000}


@pytest.mark.parametrize("kind", CLIENTS)
def test_the_control_plane_restarted_mid_run(world, kind):
    cp, b, tmp = world
    port = cp.port
    first = spec(1, {"a": [(b.ports["b1"], "z1", 0), (b.ports["b2"], "z1", 0)]})
    cp.set(first)
    client = run_client(kind, bootstrap(tmp, port, kind), 16000, concurrency=10, interval_ms=5)
    time.sleep(1.0)
    cp.stop()
    time.sleep(1.5)
    cp2 = ControlPlane(port)
    try:
        cp2.set(first)
        moved = cp2.set(spec(2, {"a": [(b.ports["b3"], "z1", 0)]}))
        calls, summary, err = results(client)
        assert summary == "16000 passed, 0 failed", err
        # Resynchronised: the new control plane's endpoints took over.
        assert cp2.wait_for(lambda e: e.startswith(f"ACK {kind} ") and "Listener" in e)
        # grpc-go backs off longer before reconnecting than we do: judge the last fifth.
        late = [r.split()[0] for t, r in sorted(calls)[-len(calls) // 5:] if t > moved]
        assert late and set(late) == {"b3"}, Counter(late)
    finally:
        cp2.stop()


@pytest.mark.parametrize("kind", CLIENTS)
def test_the_route_retry_policy_retries_unavailable(world, kind):
    cp, b, tmp = world
    eps = {"a": [(b.ports["b1"], "z1", 0), (b.ports["b2"], "z1", 0)]}
    boot = bootstrap(tmp, cp.port, kind)
    # Without a retry policy, every first attempt fails.
    cp.set(spec(1, eps))
    _, summary, _ = results(run_client(kind, boot, 50, fail_until=2))
    assert summary == "0 passed, 50 failed", summary
    cp.set(spec(2, eps, routes=[{"prefix": "/", "clusters": [["a", 1]],
                                 "retry_on": "unavailable", "num_retries": 2}]))
    time.sleep(0.5)
    _, summary, err = results(run_client(kind, boot, 200, fail_until=2))
    assert summary == "200 passed, 0 failed", err


def rgrpc_cli(boot, *args, timeout=60):
    env = {"GRPC_XDS_BOOTSTRAP": str(boot), "PATH": "/usr/bin:/bin"}
    return subprocess.run([binary("rgrpc"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_the_cli_calls_through_xds_and_prints_the_resources(world):
    cp, b, tmp = world
    boot = bootstrap(tmp, cp.port, "cli")
    cp.set(spec(1, {"a": [(b.ports["b2"], "z1", 0)]}))
    proto = ["--proto", "grpc/testing/test.proto", "-I", "crates/rgrpc-interop/proto"]
    call = rgrpc_cli(boot, "call", "xds:///greeter", "grpc.testing.TestService/UnaryCall",
                     *proto, "-d", '{"responseSize": 3}', "-v")
    assert call.returncode == 0, call.stderr
    assert json.loads(call.stdout) == {"payload": {"body": "AAAA"}}, call.stdout
    assert "x-server-id: b2" in call.stderr, call.stderr

    shown = rgrpc_cli(boot, "xds", "xds:///greeter", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    resources = {r["typeUrl"].rsplit(".", 1)[-1]: r for r in json.loads(shown.stdout)}
    assert set(resources) == {"Listener", "RouteConfiguration", "Cluster",
                              "ClusterLoadAssignment"}, resources
    assert all(r["status"] == "acked" and r["version"] == "1" for r in resources.values()), \
        resources
    assert resources["Listener"]["name"] == "greeter"
    assert resources["Cluster"]["name"] == "a"
    assert str(b.ports["b2"]) in resources["ClusterLoadAssignment"]["summary"], resources

    # A refused route configuration shows as NACKed, with the reason.
    cp.set(spec(2, {"a": [(b.ports["b2"], "z1", 0)]},
                routes=[{"prefix": "/", "bad_regex": True, "clusters": [["a", 1]]}]))
    shown = rgrpc_cli(boot, "xds", "xds:///greeter", "--timeout", "3s")
    route = next(line for line in shown.stdout.splitlines()
                 if line.startswith("RouteConfiguration"))
    assert "nacked" in route, shown.stdout
    assert "regex" in shown.stdout.split(route, 1)[1].splitlines()[1].lower(), shown.stdout

    # Not an xds: target: a usage error.
    wrong = rgrpc_cli(boot, "xds", "dns:///localhost:1")
    assert wrong.returncode == 2 and "not an xds: target" in wrong.stderr, wrong.stderr
