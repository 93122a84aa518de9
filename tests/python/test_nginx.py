"""nginx (Debian's package) with grpc_pass in front of our servers: our client and a Python client
through the proxy, then an upstream of three of our servers sharing 300 calls."""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from conftest import Proc, binary, free_port, wait_for_port
from test_examples import python_client, rust_client, start_rust_server, stubs

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(backends):
    """nginx on a free loopback port, proxying gRPC to `backends` (ports), with a config written
    here. Returns (process, port, workdir)."""
    work = Path(tempfile.mkdtemp(prefix="rgrpc-nginx-"))
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{b};" for b in backends)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {work}/{kind};"
        for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    )
    (work / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp_paths}
    upstream backends {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://backends;
        }}
    }}
}}
""")
    p = Proc([NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(work / "error.log")])
    wait_for_port(port, p.proc)
    return p, port, work


@pytest.fixture(autouse=True)
def need_nginx():
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: scripts/test.sh installs Debian's package")


def test_our_client_and_python_client_through_nginx():
    backend, backend_port = start_rust_server("user-info")
    proxy, port, work = start_nginx([backend_port])
    try:
        expected = ["用户信息: id: 7; name: 王五"]
        assert rust_client("user-info", port, "7", "王五") == expected
        assert python_client("user-info", port, "7", "王五") == expected
        # Streaming through the proxy too.
        rg, rg_port = start_rust_server("route-guide")
        try:
            proxy2, port2, work2 = start_nginx([rg_port])
            try:
                lines = rust_client("route-guide", port2)
                assert lines[-1] == 'RouteChat: "Third message" at (0, 3)'
                assert "RecordRoute: 12 points, 10 features, 1022450 metres" in lines
            finally:
                proxy2.stop()
                shutil.rmtree(work2, ignore_errors=True)
        finally:
            rg.stop()
    finally:
        proxy.stop()
        backend.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_three_backends_share_300_calls():
    backends = [start_rust_server("user-info", "--log") for _ in range(3)]
    proxy, port, work = start_nginx([b[1] for b in backends])
    try:
        sys.path.insert(0, str(stubs("user-info")))
        import hello_pb2
        import hello_pb2_grpc
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = hello_pb2_grpc.UserInfoStub(channel)
            for i in range(300):
                reply = stub.Info(hello_pb2.User(id=str(i), name="n"))
                assert reply.message == f"id: {i}; name: n"
        sys.path.remove(str(stubs("user-info")))
    finally:
        proxy.stop()
        counts = []
        for p, backend_port in backends:
            p.stop()
            log = p.proc.stdout.read()
            counts.append(sum(1 for line in log.splitlines() if " Info " in line))
        shutil.rmtree(work, ignore_errors=True)
    print("calls per backend (from each server's own log):", counts)
    assert sum(counts) == 300
    assert all(c > 0 for c in counts), counts
