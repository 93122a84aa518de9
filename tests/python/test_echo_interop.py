"""Python grpcio and rgrpc, both directions, every call kind."""

import subprocess
import threading
import time

import grpc
import pytest

import echo_pb2
import echo_pb2_grpc
from conftest import binary


def stub(port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel, echo_pb2_grpc.EchoStub(channel)


def test_unary_with_metadata(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        reply, call = echo.Unary.with_call(
            echo_pb2.EchoRequest(message="hello 你好"), metadata=(("x-echo", "meta"),)
        )
        assert reply.message == "hello 你好"
        assert ("x-echo", "meta") in call.initial_metadata()
        assert ("x-echo-trailer", "meta") in call.trailing_metadata()


def test_large_unary(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        reply = echo.Unary(echo_pb2.EchoRequest(message="x" * (1 << 20), reply_size=2 << 20))
        assert len(reply.padding) == 2 << 20


def test_server_streaming(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        replies = list(echo.ServerStream(echo_pb2.EchoRequest(message="s", count=25)))
        assert [r.index for r in replies] == list(range(25))


def test_client_streaming(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        reply = echo.ClientStream(iter(echo_pb2.EchoRequest(message=m) for m in "abcde"))
        assert reply.message == "a,b,c,d,e"
        assert reply.index == 5


def test_bidi_ping_pong(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        sent = []
        ready = threading.Semaphore(0)

        def requests():
            for i in range(10):
                sent.append(i)
                yield echo_pb2.EchoRequest(message=f"ping {i}")
                ready.acquire(timeout=10)

        for i, reply in enumerate(echo.Bidi(requests())):
            assert reply.message == f"ping {i}"
            assert sent[-1] == i, "each reply arrives before the next request is sent"
            ready.release()


def test_status_codes_and_messages(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    with channel:
        for code in grpc.StatusCode:
            if code == grpc.StatusCode.OK:
                continue
            with pytest.raises(grpc.RpcError) as err:
                echo.Unary(echo_pb2.EchoRequest(message=text, fail_code=code.value[0]))
            assert err.value.code() == code
            assert err.value.details() == text


def test_deadline_and_unimplemented(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        with pytest.raises(grpc.RpcError) as err:
            echo.WaitForCancel(echo_pb2.EchoRequest(), timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        missing = channel.unary_unary("/test.echo.Echo/Missing")
        with pytest.raises(grpc.RpcError) as err:
            missing(b"")
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_message_limit(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        with pytest.raises(grpc.RpcError) as err:
            echo.Unary(echo_pb2.EchoRequest(message="x" * (5 << 20)))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert echo.Unary(echo_pb2.EchoRequest(message="still here")).message == "still here"


def test_cancel_from_python(rust_echo_server):
    channel, echo = stub(rust_echo_server)
    with channel:
        future = echo.WaitForCancel.future(echo_pb2.EchoRequest())
        time.sleep(0.2)
        assert future.cancel()
        # The server keeps serving after the cancellation.
        assert echo.Unary(echo_pb2.EchoRequest(message="after")).message == "after"


def test_rust_client_against_python_server(python_echo_server):
    out = subprocess.run(
        [binary("echo-client"), "--addr", f"http://127.0.0.1:{python_echo_server}"],
        capture_output=True, text=True, timeout=120,
    )
    print(out.stdout, out.stderr)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    for check in ["unary", "large_unary", "server_streaming", "client_streaming",
                  "bidi_streaming", "status", "deadline"]:
        assert f"PASS {check}" in lines


def test_rust_client_against_rust_server(rust_echo_server):
    out = subprocess.run(
        [binary("echo-client"), "--addr", f"http://127.0.0.1:{rust_echo_server}"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compressed_calls_from_python(rust_echo_server, compression):
    channel = grpc.insecure_channel(f"127.0.0.1:{rust_echo_server}", compression=compression)
    grpc.channel_ready_future(channel).result(timeout=10)
    with channel:
        echo = echo_pb2_grpc.EchoStub(channel)
        reply, call = echo.Unary.with_call(echo_pb2.EchoRequest(message="z" * 10000))
        assert reply.message == "z" * 10000
        assert ("x-request-compressed", "true") in call.initial_metadata()
        replies = list(echo.ServerStream(echo_pb2.EchoRequest(message="s", count=5, reply_size=4000)))
        assert len(replies) == 5
        reply = echo.ClientStream(iter(echo_pb2.EchoRequest(message=m * 500) for m in "xyz"))
        assert reply.message == ",".join(m * 500 for m in "xyz")


def test_rust_client_compressed_against_python_server(python_echo_server):
    out = subprocess.run(
        [binary("echo-client"), "--addr", f"http://127.0.0.1:{python_echo_server}",
         "--check", "compressed"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS compressed" in out.stdout.splitlines()
