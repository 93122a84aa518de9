"""The rgrpc CLI against our servers and a grpcio server with grpcio-reflection; our reflection
read by grpcio's reflection client and by `buf curl`; health Watch through a shutdown."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from conftest import GEN, ROOT, Proc, binary, free_port, wait_for_port
from test_examples import EXAMPLES, python_env, start_rust_server, stubs

BUF = str(Path(sys.executable).parent / "buf")


def rgrpc(*args, stdin=None):
    return subprocess.run([binary("rgrpc"), *args], capture_output=True, text=True,
                          timeout=60, input=stdin)


@pytest.fixture
def route_guide():
    p, port = start_rust_server("route-guide")
    yield f"http://127.0.0.1:{port}"
    p.stop()


@pytest.fixture
def python_route_guide():
    port = free_port()
    tutorial = EXAMPLES / "route-guide" / "python"
    p = Proc([sys.executable, str(Path(__file__).parent / "reflection_server.py"), str(port),
              str(tutorial)], env=python_env("route-guide"))
    wait_for_port(port, p.proc)
    yield f"http://127.0.0.1:{port}"
    p.stop()


def test_list_and_describe(route_guide):
    out = rgrpc("list", route_guide)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                  "grpc.reflection.v1alpha.ServerReflection",
                                  "routeguide.RouteGuide"]
    out = rgrpc("list", route_guide, "routeguide.RouteGuide")
    assert "routeguide.RouteGuide.RouteChat" in out.stdout.split()
    out = rgrpc("describe", route_guide, "routeguide.RouteGuide")
    assert "rpc ListFeatures(routeguide.Rectangle) returns (stream routeguide.Feature);" in out.stdout
    out = rgrpc("describe", route_guide, "routeguide.Rectangle")
    assert "routeguide.Point lo = 1;" in out.stdout
    out = rgrpc("describe", route_guide, "routeguide.Nope")
    assert out.returncode == 4 and "Nope" in out.stderr


def test_call_every_kind(route_guide):
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/GetFeature",
                "-d", '{"latitude": 410123457, "longitude": -732012989}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "Birch Hollow Station"
    rect = '{"lo":{"latitude":400000000,"longitude":-750000000},' \
           '"hi":{"latitude":410000000,"longitude":-740000000}}'
    out = rgrpc("call", route_guide, "routeguide.RouteGuide.ListFeatures", "-d", rect)
    lines = out.stdout.splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["name"] == "Alder Crossing"
    points = '{"latitude": 401000000, "longitude": -748000000}\n' \
             '{"latitude": 410123457, "longitude": -732012989}\n'
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/RecordRoute", stdin=points)
    summary = json.loads(out.stdout)
    assert summary["pointCount"] == 2 and summary["featureCount"] == 2
    notes = "".join(json.dumps({"location": {"latitude": 0, "longitude": lon}, "message": m}) + "\n"
                    for m, lon in [("a", 1), ("b", 1), ("c", 1)])
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/RouteChat", stdin=notes)
    assert [json.loads(l)["message"] for l in out.stdout.splitlines()] == ["a", "a", "b"]


def test_errors_have_codes_and_name_the_problem(route_guide):
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/GetFeature", "-d", '{"lattitude": 1}')
    assert out.returncode == 2 and "lattitude" in out.stderr
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/GetFeature", "-d", "{not json")
    assert out.returncode == 2
    out = rgrpc("call", route_guide, "routeguide.RouteGuide/Nope", "-d", "{}")
    assert out.returncode == 4
    out = rgrpc("call", "http://127.0.0.1:1", "a.B/C", "-d", "{}")
    assert out.returncode == 3 and "UNAVAILABLE" in out.stderr


def test_every_target_form_and_a_service_config(route_guide):
    """list, describe, call and health take any channel target, and --service-config."""
    port = route_guide.rsplit(":", 1)[1]
    point = '{"latitude": 410123457, "longitude": -732012989}'
    for target in [f"127.0.0.1:{port}", f"dns:///localhost:{port}", f"ipv4:127.0.0.1:{port}",
                   f"ipv4:127.0.0.1:1,127.0.0.1:{port}"]:
        out = rgrpc("call", target, "routeguide.RouteGuide/GetFeature", "-d", point)
        assert out.returncode == 0, (target, out.stderr)
        assert json.loads(out.stdout)["name"] == "Birch Hollow Station"
        assert rgrpc("list", target).returncode == 0
        assert rgrpc("describe", target, "routeguide.Point").returncode == 0
        assert rgrpc("health", target).returncode == 0
    config = ('{"loadBalancingConfig":[{"round_robin":{}}],"methodConfig":[{"name":[{}],'
              '"timeout":"5s","retryPolicy":{"maxAttempts":3,"initialBackoff":"0.1s",'
              '"maxBackoff":"1s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}')
    out = rgrpc("call", "--service-config", config, f"ipv4:127.0.0.1:1,127.0.0.1:{port}",
                "routeguide.RouteGuide/GetFeature", "-d", point)
    assert out.returncode == 0, out.stderr
    out = rgrpc("call", "--service-config", '{"methodConfig":[{"name":[{}],"timeout":"soon"}]}',
                route_guide, "routeguide.RouteGuide/GetFeature", "-d", point)
    assert out.returncode == 2 and "methodConfig[0].timeout" in out.stderr, out.stderr
    out = rgrpc("call", "nope:///x", "a.B/C", "-d", "{}")
    assert out.returncode == 2 and "no resolver" in out.stderr, out.stderr


def test_call_with_local_protos_metadata_and_verbose():
    p, port = start_rust_server("user-info")
    try:
        out = rgrpc("call", f"http://127.0.0.1:{port}", "hello.UserInfo/Info",
                    "--proto", "hello.proto", "-I", str(EXAMPLES / "user-info"),
                    "-H", "x-trace: 1", "-v", "--timeout", "5s",
                    "-d", '{"id": "7", "name": "王五"}')
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"message": "id: 7; name: 王五"}
        assert "< grpc-status: OK" in out.stderr.splitlines()
    finally:
        p.stop()


def test_health(route_guide):
    out = rgrpc("health", route_guide)
    assert out.returncode == 0 and out.stdout.strip() == "SERVING"
    out = rgrpc("health", route_guide, "routeguide.RouteGuide")
    assert out.returncode == 0
    out = rgrpc("health", route_guide, "no.Such")
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr


def test_cli_on_a_grpcio_server_with_grpcio_reflection(python_route_guide):
    out = rgrpc("list", python_route_guide)
    assert out.returncode == 0, out.stderr
    assert "routeguide.RouteGuide" in out.stdout.split()
    out = rgrpc("describe", python_route_guide, "routeguide.Feature")
    assert "string name = 1;" in out.stdout
    out = rgrpc("call", python_route_guide, "routeguide.RouteGuide/GetFeature",
                "-d", '{"latitude": 410123457, "longitude": -732012989}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "Birch Hollow Station"


def test_grpcio_reflection_client_reads_our_reflection(route_guide):
    from google.protobuf import descriptor_pool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase)
    with grpc.insecure_channel(route_guide.removeprefix("http://")) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert "routeguide.RouteGuide" in db.get_services()
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName("routeguide.RouteGuide")
        assert [m.name for m in service.methods] == [
            "GetFeature", "ListFeatures", "RecordRoute", "RouteChat"]
        assert pool.FindMessageTypeByName("routeguide.RouteNote").fields_by_name["message"]


def test_buf_curl_through_our_reflection(route_guide):
    out = subprocess.run(
        [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
         "-d", '{"latitude": 410123457, "longitude": -732012989}',
         f"{route_guide}/routeguide.RouteGuide/GetFeature"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "Birch Hollow Station"


def test_health_watch_sees_shutdown():
    p, port = start_rust_server("route-guide")
    sys.path.insert(0, str(GEN / "health"))
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    seen = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="routeguide.RouteGuide"))
            seen.append(next(watch).status)
            p.proc.send_signal(signal.SIGTERM)
            seen.append(next(watch).status)
            watch.cancel()
    finally:
        sys.path.remove(str(GEN / "health"))
        p.stop()
    assert seen == [health_pb2.HealthCheckResponse.SERVING,
                    health_pb2.HealthCheckResponse.NOT_SERVING]


def test_cli_over_tls_with_token_and_skip_verify():
    import tempfile
    certs = tempfile.mkdtemp(prefix="rgrpc-cli-certs-")
    subprocess.run([binary("make-certs"), certs], check=True)
    port = free_port()
    p = Proc([binary("secure-greeter-server"), "--addr", f"127.0.0.1:{port}",
              "--cert", f"{certs}/server.pem", "--key", f"{certs}/server.key",
              "--token", "tk"], stderr=subprocess.DEVNULL)
    wait_for_port(port, p.proc)
    url = f"https://localhost:{port}"
    auth = ["-H", "authorization: Bearer tk"]
    try:
        out = rgrpc("call", url, "secure.Greeter/SayHello", "--cacert", f"{certs}/ca.pem",
                    *auth, "-d", '{"name": "cli"}')
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"message": "Hello, cli!"}
        # The system roots do not know our test CA.
        out = rgrpc("list", url, *auth)
        assert out.returncode == 3 and "UnknownIssuer" in out.stderr, out.stderr
        out = rgrpc("list", url, "--insecure-skip-verify", *auth)
        assert out.returncode == 0 and "secure.Greeter" in out.stdout.split(), out.stderr
        # Reflection is behind the same token check.
        out = rgrpc("list", url, "--cacert", f"{certs}/ca.pem")
        assert out.returncode == 4 and "UNAUTHENTICATED" in out.stderr, out.stderr
    finally:
        p.stop()


def test_exit_codes_tell_not_serving_and_load_shedding_from_no_connection():
    """Exit 5 for a service that is not serving; a server's own UNAVAILABLE (load shedding) is a
    failed call (1), not a failure to connect (3), which only an unreachable server gives."""
    from concurrent import futures
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    def shed(request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded, try later")

    handler = grpc.method_handlers_generic_handler(
        "routeguide.RouteGuide", {"GetFeature": grpc.unary_unary_rpc_method_handler(shed)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
    checker = health.HealthServicer()
    checker.set("routeguide.RouteGuide", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        target = f"http://127.0.0.1:{port}"
        out = rgrpc("health", target, "routeguide.RouteGuide")
        assert out.returncode == 5 and out.stdout.strip() == "NOT_SERVING", out
        out = rgrpc("call", target, "routeguide.RouteGuide/GetFeature",
                    "--proto", "route_guide.proto", "-I", str(EXAMPLES / "route-guide"),
                    "-d", "{}")
        assert out.returncode == 1, out
        assert "UNAVAILABLE" in out.stderr and "overloaded" in out.stderr, out.stderr
    finally:
        server.stop(None)
    out = rgrpc("call", f"http://127.0.0.1:{free_port()}", "routeguide.RouteGuide/GetFeature",
                "--proto", "route_guide.proto", "-I", str(EXAMPLES / "route-guide"), "-d", "{}",
                "--timeout", "2s")
    assert out.returncode == 3 and "UNAVAILABLE" in out.stderr, out
