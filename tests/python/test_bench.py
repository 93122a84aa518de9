"""`rgrpc bench` against our servers and a grpcio server: the four call kinds, closed and open
loop, errors counted by code, every target form with a service config, the progress bar only on
a terminal, and the HTML report rendered in headless Chromium."""

import json
import os
import pty
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PROTO_DIR, ROOT, Proc, binary, free_port, wait_for_port
from test_examples import start_rust_server

POINT = '{"latitude": 410123457, "longitude": -732012989}'
RECT = ('{"lo":{"latitude":400000000,"longitude":-750000000},'
        '"hi":{"latitude":410000000,"longitude":-740000000}}')
ECHO = ["--proto", "echo.proto", "-I", str(PROTO_DIR)]


def bench(*args, stdin=None, timeout=120):
    return subprocess.run([binary("rgrpc"), "bench", *args], capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def report(*args):
    out = bench(*args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def route_guide():
    p, port = start_rust_server("route-guide")
    yield f"http://127.0.0.1:{port}"
    p.stop()


def echo_server(*extra):
    port = free_port()
    p = Proc([binary("echo-server"), "--addr", f"127.0.0.1:{port}", *extra],
             stdout=subprocess.DEVNULL)
    wait_for_port(port, p.proc)
    return p, port


def test_every_call_kind_closed_loop(route_guide):
    r = report(route_guide, "routeguide.RouteGuide/GetFeature", "-d", POINT, "-n", "500",
               "-c", "20")
    assert (r["count"], r["ok"], r["errors"], r["kind"]) == (500, 500, {}, "unary")
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert r["rps"] > 0 and r["duration_s"] > 0
    assert sum(b["count"] for b in r["histogram"]) == 500
    assert sum(p["calls"] for p in r["timeline"]["points"]) == 500

    r = report(route_guide, "routeguide.RouteGuide/ListFeatures", "-d", RECT, "-n", "100")
    assert r["kind"] == "server-streaming" and r["ok"] == 100
    # Six features lie in that rectangle.
    assert r["messages"] == {"per_call": 1, "sent": 100, "received": 600}

    points = '{"latitude": 401000000, "longitude": -748000000}\n' + POINT + "\n"
    out = bench(route_guide, "routeguide.RouteGuide/RecordRoute", "-d", "-", "--messages", "5",
                "-n", "100", "--format", "json", stdin=points)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["kind"] == "client-streaming" and r["ok"] == 100
    assert r["messages"] == {"per_call": 5, "sent": 500, "received": 100}

    note = '{"location": {"latitude": 1, "longitude": 1}, "message": "n"}'
    r = report(route_guide, "routeguide.RouteGuide/RouteChat", "-d", note, "--messages", "3",
               "-n", "50", "-c", "5")
    assert r["kind"] == "bidi-streaming" and r["ok"] == 50
    assert r["messages"]["sent"] == 150 and r["messages"]["received"] >= 100


def test_open_loop_starts_calls_on_schedule(route_guide):
    # 150 calls a second for one second: the schedule holds exactly 150 starts.
    r = report(route_guide, "routeguide.RouteGuide/GetFeature", "-d", POINT, "--rps", "150",
               "-z", "1s", "--warmup", "200ms", "-c", "10")
    assert (r["count"], r["ok"], r["rps_target"]) == (150, 150, 150.0)
    assert 0.98 < r["duration_s"] < 3, r["duration_s"]
    r = report(route_guide, "routeguide.RouteGuide/GetFeature", "-d", POINT, "--rps", "400",
               "-n", "80")
    assert r["count"] == 80 and 0.19 < r["duration_s"] < 3


def test_errors_are_counted_by_code():
    p, port = echo_server()
    try:
        target = f"http://127.0.0.1:{port}"
        out = bench(target, "test.echo.Echo/Unary", *ECHO, "-d", '{"message": "down", "failCode": 14}',
                    "-n", "60", "--format", "json")
        assert out.returncode == 1 and "no call succeeded" in out.stderr, out.stderr
        r = json.loads(out.stdout)
        assert (r["count"], r["ok"], r["errors"]) == (60, 0, {"UNAVAILABLE": 60})
        assert r["error_messages"] == [{"code": "UNAVAILABLE", "message": "down", "count": 60}]
        # Half the calls outlive their deadline.
        text = bench(target, "test.echo.Echo/Unary", *ECHO, "-d", '{"delayMs": 300}', "-n", "4",
                     "-c", "4", "--timeout", "100ms")
        assert text.returncode == 1 and "DEADLINE_EXCEEDED" in text.stdout, text.stdout
    finally:
        p.stop()


def test_every_target_form_and_a_service_config():
    a, port_a = echo_server("--id", "a")
    b, port_b = echo_server("--id", "b")
    try:
        for target in [f"127.0.0.1:{port_a}", f"dns:///localhost:{port_a}",
                       f"ipv4:127.0.0.1:{port_a}", f"http://localhost:{port_a}"]:
            r = report(target, "test.echo.Echo/Unary", *ECHO, "-d", '{"message": "x"}', "-n", "20")
            assert r["ok"] == 20, target
        config = '{"loadBalancingConfig": [{"round_robin": {}}]}'
        r = report(f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}", "test.echo.Counter/Count", *ECHO,
                   "--service-config", config, "-n", "400", "-c", "8", "--connections", "2")
        assert r["ok"] == 400
        served = []
        for port in (port_a, port_b):
            out = subprocess.run([binary("rgrpc"), "call", f"http://127.0.0.1:{port}",
                                  "test.echo.Counter/Count", *ECHO, "-d", "{}"],
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            served.append(json.loads(out.stdout)["index"] - 1)
        assert sum(served) == 400 and min(served) >= 120, served
        out = bench(f"ipv4:127.0.0.1:{port_a}", "test.echo.Echo/Unary", *ECHO, "--service-config",
                    '{"loadBalancingConfig": [{"nope": {}}]}', "-n", "1")
        assert out.returncode == 2 and "loadBalancingConfig" in out.stderr, out.stderr
    finally:
        a.stop()
        b.stop()


def test_against_a_grpcio_server(python_echo_server):
    target = f"http://127.0.0.1:{python_echo_server}"
    r = report(target, "test.echo.Echo/Unary", *ECHO, "-d", '{"message": "hi"}', "-n", "300")
    assert (r["ok"], r["errors"]) == (300, {})
    r = report(target, "test.echo.Echo/Bidi", *ECHO, "-d", '{"message": "hi"}', "--messages", "4",
               "-n", "40", "-c", "4")
    assert r["ok"] == 40 and r["messages"]["received"] == 160


def test_progress_bar_only_on_a_terminal(route_guide):
    args = [binary("rgrpc"), "bench", route_guide, "routeguide.RouteGuide/GetFeature", "-d",
            POINT, "--rps", "50", "-z", "1s", "--format", "json"]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    leader, follower = pty.openpty()
    try:
        run = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, timeout=60)
        os.close(follower)
        follower = None
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert run.returncode == 0
    assert json.loads(run.stdout)["count"] == 50
    assert b"calls," in seen and b"%" in seen and b"[#" in seen, seen[:200]


def test_usage_errors(route_guide):
    method = "routeguide.RouteGuide/GetFeature"
    for args, why in [(["-n", "5", "-z", "1s"], "cannot be used with"),
                      (["--connections", "4", "-c", "2"], "--concurrency"),
                      (["--messages", "3"], "--messages"),
                      (["--rps", "0"], "--rps"),
                      (["--format", "xml"], "xml")]:
        out = bench(route_guide, method, *args)
        assert out.returncode == 2 and why in out.stderr, (args, out.stderr)
    out = bench(route_guide, "routeguide.RouteGuide/Nope")
    assert out.returncode == 4 and "Nope" in out.stderr


def test_html_report_renders_in_chromium(route_guide):
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        out = bench(route_guide, "routeguide.RouteGuide/GetFeature", "-d", POINT, "--rps", "200",
                    "-z", "1500ms", "--format", "html", "-o", str(page))
        assert out.returncode == 0 and out.stdout == "", out.stderr
        text = page.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "").replace(
            route_guide, ""), "the report must load nothing from the network"
        drawn = subprocess.run(["node", str(ROOT / "tests" / "node" / "render-report.js"),
                                str(page)], capture_output=True, text=True, timeout=120)
        assert drawn.returncode == 0, drawn.stderr
        seen = json.loads(drawn.stdout)
    assert seen["errors"] == []
    assert seen["title"] == "rgrpc bench: routeguide.RouteGuide/GetFeature"
    assert seen["count"] == 300 and sum(seen["barCounts"]) == 300
    assert seen["visibleBars"] >= 1
    for line in ["latency-over-time.p50", "latency-over-time.p99", "calls-over-time.calls"]:
        assert seen["lines"].get(line, 0) > 300, (line, seen["lines"])
