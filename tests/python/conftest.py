"""Shared set-up for the interop tests: generated stubs, our binaries, free ports, processes."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GEN = HERE / "gen"
PROTO_DIR = ROOT / "tests" / "rust" / "proto"


def _generate_stubs():
    """Python stubs for echo.proto, made with grpc_tools.protoc as the tutorials do."""
    from grpc_tools import protoc

    GEN.mkdir(exist_ok=True)
    rc = protoc.main([
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={GEN}",
        f"--grpc_python_out={GEN}",
        str(PROTO_DIR / "echo.proto"),
    ])
    if rc != 0:
        raise RuntimeError("grpc_tools.protoc failed")


_generate_stubs()
sys.path.insert(0, str(GEN))
sys.path.insert(0, str(HERE))


def binary(name):
    """A binary of this workspace, built by the test command before pytest runs."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run cargo build --workspace --bins first")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Proc:
    """A process we started, stopped by its PID when the test ends."""

    def __init__(self, args, **kw):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def rust_echo_server():
    """Our Echo server on a free port; yields the port."""
    port = free_port()
    p = Proc([binary("echo-server"), "--addr", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, p.proc)
        yield port
    finally:
        p.stop()


@pytest.fixture
def python_echo_server():
    """The grpcio Echo server on a free port; yields the port."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GEN), str(HERE)]))
    p = Proc([sys.executable, str(HERE / "echo_server.py"), "--port", str(port)], env=env)
    try:
        wait_for_port(port, p.proc)
        yield port
    finally:
        p.stop()
