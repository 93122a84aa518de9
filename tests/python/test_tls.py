"""TLS, mutual TLS and token auth between rgrpc and Python grpcio, both directions, with
certificates generated for this run (make-certs); the secure-greeter example on both sides."""

import subprocess
import sys
import tempfile

import grpc
import pytest

from conftest import Proc, binary, free_port, wait_for_port
from test_examples import EXAMPLES, python_env, stubs

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="rgrpc-certs-")
    subprocess.run([binary("make-certs"), d], check=True)
    return d


def cert(certs, name):
    return f"{certs}/{name}"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def start_rust(certs, *extra):
    port = free_port()
    p = Proc([binary("secure-greeter-server"), "--addr", f"127.0.0.1:{port}",
              "--cert", cert(certs, "server.pem"), "--key", cert(certs, "server.key"),
              "--token", TOKEN, *extra], stderr=subprocess.DEVNULL)
    wait_for_port(port, p.proc)
    return p, port


def start_python(certs, *extra):
    port = free_port()
    script = EXAMPLES / "secure-greeter" / "python" / "server.py"
    p = Proc([sys.executable, str(script), "--addr", f"127.0.0.1:{port}",
              "--cert", cert(certs, "server.pem"), "--key", cert(certs, "server.key"),
              "--token", TOKEN, *extra], env=python_env("secure-greeter"))
    wait_for_port(port, p.proc)
    return p, port


def say_hello(port, certs, token=TOKEN, client_cert=None, ca="ca.pem"):
    """A grpcio call with ssl_channel_credentials composed with access_token_call_credentials."""
    sys.path.insert(0, str(stubs("secure-greeter")))
    import greeter_pb2
    import greeter_pb2_grpc
    sys.path.pop(0)
    key = chain = None
    if client_cert:
        key, chain = read(cert(certs, client_cert + ".key")), read(cert(certs, client_cert + ".pem"))
    creds = grpc.ssl_channel_credentials(read(cert(certs, ca)), key, chain)
    if token is not None:
        creds = grpc.composite_channel_credentials(
            creds, grpc.access_token_call_credentials(token))
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        return greeter_pb2_grpc.GreeterStub(channel).SayHello(
            greeter_pb2.HelloRequest(name="py"), timeout=10).message


def rust_client(port, certs, *extra):
    return subprocess.run([binary("secure-greeter-client"), "--addr", f"https://localhost:{port}",
                           *extra, "rs"], capture_output=True, text=True, timeout=60)


def test_grpcio_client_with_token_over_tls(certs):
    p, port = start_rust(certs)
    try:
        assert say_hello(port, certs) == "Hello, py!"
        for token, why in [("wrong", "not valid"), (None, "required")]:
            with pytest.raises(grpc.RpcError) as err:
                say_hello(port, certs, token=token)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert why in err.value.details()
    finally:
        p.stop()


def test_mutual_tls_with_grpcio_clients(certs):
    p, port = start_rust(certs, "--client-ca", cert(certs, "ca.pem"))
    try:
        reply = say_hello(port, certs, client_cert="client")
        assert reply.startswith("Hello, py! (client certificate of ")
        # No certificate, or one from a CA the server does not trust: the handshake is refused.
        for client_cert in [None, "other-client"]:
            with pytest.raises(grpc.RpcError) as err:
                say_hello(port, certs, client_cert=client_cert)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, client_cert
    finally:
        p.stop()


def test_our_client_against_a_grpcio_tls_server(certs):
    p, port = start_python(certs)
    try:
        ok = rust_client(port, certs, "--ca", cert(certs, "ca.pem"), "--token", TOKEN)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.splitlines() == ["Greeter client received: Hello, rs!"]
        refused = rust_client(port, certs, "--ca", cert(certs, "ca.pem"), "--token", "wrong")
        assert refused.returncode == 1
        assert "UNAUTHENTICATED" in refused.stderr
        # A CA that did not sign the server's certificate: a clear error, no call.
        wrong = rust_client(port, certs, "--ca", cert(certs, "other-ca.pem"), "--token", TOKEN)
        assert wrong.returncode == 1
        assert "TLS handshake" in wrong.stderr and "UnknownIssuer" in wrong.stderr, wrong.stderr
    finally:
        p.stop()


def test_our_client_against_a_grpcio_mutual_tls_server(certs):
    p, port = start_python(certs, "--client-ca", cert(certs, "ca.pem"))
    try:
        ok = rust_client(port, certs, "--ca", cert(certs, "ca.pem"), "--token", TOKEN,
                         "--cert", cert(certs, "client.pem"), "--key", cert(certs, "client.key"))
        assert ok.returncode == 0, ok.stderr
        without = rust_client(port, certs, "--ca", cert(certs, "ca.pem"), "--token", TOKEN)
        assert without.returncode == 1, without.stdout
    finally:
        p.stop()


def test_server_name_override(certs):
    """The server's certificate names *.test.google.fr; connecting by IP with the override works,
    as grpc's ssl_target_name_override does."""
    p, port = start_rust(certs)
    try:
        out = subprocess.run(
            [binary("secure-greeter-client"), "--addr", f"https://127.0.0.1:{port}",
             "--ca", cert(certs, "ca.pem"), "--token", TOKEN,
             "--server-name", "foo.test.google.fr", "rs"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        wrong = subprocess.run(
            [binary("secure-greeter-client"), "--addr", f"https://127.0.0.1:{port}",
             "--ca", cert(certs, "ca.pem"), "--token", TOKEN,
             "--server-name", "elsewhere.example", "rs"],
            capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1
        assert "NotValidForName" in wrong.stderr or "not valid for" in wrong.stderr, wrong.stderr
    finally:
        p.stop()
