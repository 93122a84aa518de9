"""The tutorial examples: Python twins against our servers and our clients against Python servers,
line for line; grpc-js clients; the file server's safety; nginx's grpc_pass in front."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import grpc
import pytest

from conftest import GEN, ROOT, Proc, binary, free_port, wait_for_port

EXAMPLES = ROOT / "examples"

EXPECTED = {
    "user-info": ["用户信息: id: 1; name: zhangsan"],
    "calculator": ["100 + 300 = 400", "100 * 300 = 30000"],
    "greeter": ["Greeter client received: Hello, you!",
                "client Square 231 get :15.198683738708496"],
    "file-controller": ["File Read: Error: read failed", "File Write: 0",
                        "File Read: 37183714ghgjh243"],
    "grpc-service": ["received: xiao gangengineer this is gprc test service"],
    "route-guide": [
        'GetFeature: "Birch Hollow Station" at (410123457, -732012989)',
        "GetFeature: no feature at (0, 0)",
        'ListFeatures: "Alder Crossing" at (401000000, -748000000)',
        'ListFeatures: "Elm Street Market" at (409493828, -741051956)',
        'ListFeatures: "Foxglove Meadow" at (404617285, -744064945)',
        'ListFeatures: "Kestrel Hill Tower" at (408234570, -740129890)',
        'ListFeatures: "Larkspur Commons" at (403358027, -743142879)',
        'ListFeatures: "Riverside Boathouse" at (402098769, -742220813)',
        "ListFeatures: 6 features",
        "RecordRoute: 12 points, 10 features, 1022450 metres",
        'RouteChat: "First message" at (0, 1)',
        'RouteChat: "Second message" at (0, 2)',
        'RouteChat: "Third message" at (0, 3)',
    ],
}

PROTOS = {
    "user-info": "hello.proto",
    "calculator": "SimpleCal.proto",
    "greeter": "helloworld.proto",
    "file-controller": "muxs.proto",
    "grpc-service": "hello.proto",
    "route-guide": "route_guide.proto",
    "secure-greeter": "greeter.proto",
}


def stubs(example):
    """Python stubs of an example's proto, made with grpc_tools.protoc as the tutorials do."""
    from grpc_tools import protoc

    out = GEN / example
    if not (out / ".done").exists():
        out.mkdir(parents=True, exist_ok=True)
        src = EXAMPLES / example
        rc = protoc.main(["protoc", f"-I{src}", f"--python_out={out}",
                          f"--grpc_python_out={out}", str(src / PROTOS[example])])
        assert rc == 0
        (out / ".done").touch()
    return out


def python_env(example):
    return dict(os.environ, PYTHONPATH=str(stubs(example)))


def start_rust_server(example, *extra, port=None):
    port = port or free_port()
    p = Proc([binary(f"{example}-server"), "--addr", f"127.0.0.1:{port}", *extra],
             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wait_for_port(port, p.proc)
    return p, port


def start_python_server(example, *extra):
    port = free_port()
    script = EXAMPLES / example / "python" / "server.py"
    p = Proc([sys.executable, str(script), "--addr", f"127.0.0.1:{port}", *extra],
             env=python_env(example))
    wait_for_port(port, p.proc)
    return p, port


def run_lines(args, env=None):
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, f"{args} failed: {out.stdout}{out.stderr}"
    return out.stdout.splitlines()


def python_client(example, port, *args):
    script = EXAMPLES / example / "python" / "client.py"
    return run_lines([sys.executable, str(script), "--addr", f"127.0.0.1:{port}", *args],
                     env=python_env(example))


def rust_client(example, port, *args):
    return run_lines([binary(f"{example}-client"), "--addr", f"http://127.0.0.1:{port}", *args])


@pytest.fixture
def root_dir():
    d = tempfile.mkdtemp(prefix="muxs-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def server_args(example, root_dir):
    return ["--root", root_dir] if example == "file-controller" else []


@pytest.mark.parametrize("example", list(EXPECTED))
def test_python_tutorial_client_against_our_server(example, root_dir):
    p, port = start_rust_server(example, *server_args(example, root_dir))
    try:
        assert python_client(example, port) == EXPECTED[example]
    finally:
        p.stop()


@pytest.mark.parametrize("example", list(EXPECTED))
def test_our_client_against_python_tutorial_server(example, root_dir):
    p, port = start_python_server(example, *server_args(example, root_dir))
    try:
        assert rust_client(example, port) == EXPECTED[example]
    finally:
        p.stop()


def test_user_info_with_arguments():
    p, port = start_rust_server("user-info")
    try:
        assert rust_client("user-info", port, "42", "李四") == ["用户信息: id: 42; name: 李四"]
        assert python_client("user-info", port, "42", "李四") == ["用户信息: id: 42; name: 李四"]
    finally:
        p.stop()


NODE = ROOT / "tests" / "node"


@pytest.mark.parametrize("example", ["user-info", "route-guide"])
def test_grpc_js_client_against_our_server(example):
    p, port = start_rust_server(example)
    try:
        lines = run_lines(["node", str(NODE / f"{example}-client.js"), "--addr", f"127.0.0.1:{port}"])
        assert lines == EXPECTED[example]
    finally:
        p.stop()


def test_calculator_overflow_is_out_of_range():
    p, port = start_rust_server("calculator")
    sys.path.insert(0, str(stubs("calculator")))
    try:
        import SimpleCal_pb2
        import SimpleCal_pb2_grpc
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = SimpleCal_pb2_grpc.CalStub(channel)
            for call, a, b in [(stub.Add, 2**31 - 1, 1), (stub.Multiply, 65536, 65536)]:
                request = SimpleCal_pb2.AddRequest(number1=a, number2=b)
                if call is stub.Multiply:
                    request = SimpleCal_pb2.MultiplyRequest(number1=a, number2=b)
                with pytest.raises(grpc.RpcError) as err:
                    call(request)
                assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
                assert "int32" in err.value.details()
    finally:
        sys.path.remove(str(stubs("calculator")))
        p.stop()


def test_greeter_negative_square_is_invalid_argument():
    p, port = start_rust_server("greeter")
    sys.path.insert(0, str(stubs("greeter")))
    try:
        import helloworld_pb2
        import helloworld_pb2_grpc
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = helloworld_pb2_grpc.GreeterStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Square(helloworld_pb2.Number(value=-4))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        sys.path.remove(str(stubs("greeter")))
        p.stop()


def muxs_stub(port):
    sys.path.insert(0, str(stubs("file-controller")))
    import muxs_pb2
    import muxs_pb2_grpc
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, muxs_pb2, muxs_pb2_grpc.FileControllerStub(channel)


def test_file_controller_rejects_paths_outside_its_root(root_dir):
    outside = Path(root_dir).parent / f"outside-{os.getpid()}.txt"
    p, port = start_rust_server("file-controller", "--root", root_dir)
    channel, pb, stub = muxs_stub(port)
    try:
        for name in ["../escape.txt", "/etc/passwd", "a/../../b.txt", "..", "", str(outside),
                     "./x/../../y"]:
            for call in (stub.Read, stub.Write):
                with pytest.raises(grpc.RpcError) as err:
                    call(pb.Files(filename=name, text="x"))
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
        assert not outside.exists()
        # A symlink inside the root that points out of it is refused too.
        os.symlink("/etc", os.path.join(root_dir, "etc-link"))
        with pytest.raises(grpc.RpcError) as err:
            stub.Read(pb.Files(filename="etc-link/hostname"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # So is a symlink as the name itself, to a file outside or to nothing at all.
        os.symlink("/etc/hostname", os.path.join(root_dir, "host-link"))
        os.symlink(str(outside), os.path.join(root_dir, "dangling-link"))
        for name in ["host-link", "dangling-link"]:
            for call in (stub.Read, stub.Write):
                with pytest.raises(grpc.RpcError) as err:
                    call(pb.Files(filename=name, text="x"))
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
        assert not outside.exists()
        os.remove(os.path.join(root_dir, "host-link"))
        os.remove(os.path.join(root_dir, "dangling-link"))
        # Plain names still work.
        assert stub.Write(pb.Files(filename="ok.txt", text="fine")).code == 0
        assert stub.Read(pb.Files(filename="ok.txt")).text == "fine"
    finally:
        channel.close()
        p.stop()


def test_file_controller_concurrent_writers_leave_one_whole_version(root_dir):
    p, port = start_rust_server("file-controller", "--root", root_dir)
    channel, pb, stub = muxs_stub(port)
    versions = {f"writer {w} " + chr(65 + w) * 200_000 for w in range(8)}
    seen = []
    # A failure inside a thread only prints a warning: each thread records what went wrong
    # instead, and the test checks the records and that every thread finished.
    failures = []

    def recorded(body):
        def run(*args):
            try:
                body(*args)
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(f"{body.__name__}: {e!r}")
        return run

    try:
        def write(text):
            for _ in range(5):
                code = stub.Write(pb.Files(filename="shared.txt", text=text)).code
                if code != 0:
                    raise AssertionError(f"write answered code {code}")

        def read():
            for _ in range(40):
                seen.append(stub.Read(pb.Files(filename="shared.txt")).text)

        threads = [threading.Thread(target=recorded(write), args=(v,)) for v in versions]
        threads += [threading.Thread(target=recorded(read)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not [t for t in threads if t.is_alive()], "a thread did not finish within 60 s"
        assert failures == []
        final = stub.Read(pb.Files(filename="shared.txt")).text
        assert final in versions
        for text in seen:
            assert text in versions or text == "Error: read failed"
        # No temporary files are left behind.
        assert os.listdir(root_dir) == ["shared.txt"]
    finally:
        channel.close()
        p.stop()


def test_least_request_example_sends_less_to_the_slow_server():
    """examples/least-request: a balancer written against the public API, chosen by the
    service config, gives the slow server far fewer calls than the two fast ones."""
    out = subprocess.run([binary("least-request")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    counts = dict(line.split(": ") for line in out.stdout.splitlines())
    calls = {name: int(text.split()[0]) for name, text in counts.items()}
    assert sum(calls.values()) == 600, calls
    assert calls["slow"] * 2 < min(calls["fast-1"], calls["fast-2"]), calls
