"""The interop suite: every case, against every peer, in both directions.

For each peer, its client runs each case against our interop-server, and our interop-client runs
each case against its server; our client also runs them against our server. The `+tls` columns do
the same over TLS, with certificates generated for this run (make-certs). Prints a table of
case x peer x direction and the closing line `N passed, M failed`; exits non-zero on a failure.

A case a peer does not implement is shown as `n/a` with the reason, and counted in neither total.

  python tests/interop/run.py [--peers go,java,python,node]

Expects our binaries in target/debug, the grpc-go programs in target/go-interop, the grpc-java
classpath in tests/java/target/lib, and `node_modules` in tests/node (scripts/test.sh builds and
installs them).
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PROTO = ROOT / "crates" / "rgrpc-interop" / "proto" / "grpc" / "testing"

CASES = [
    "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
    "client_streaming", "client_compressed_streaming", "server_streaming",
    "server_compressed_streaming", "ping_pong", "empty_stream", "timeout_on_sleeping_server",
    "cancel_after_begin", "cancel_after_first_response", "custom_metadata",
    "status_code_and_message", "special_status_message", "unimplemented_method",
    "unimplemented_service", "very_large_request",
]

GO_SERVER_GAPS = ("grpc-go's interop server neither checks expect_compressed nor compresses "
                  "per response parameter")
# Cases a peer's program does not implement, by (peer, role), with the reason.
NOT_IMPLEMENTED = {
    ("go", "client"): {
        **{c: "not a case of grpc-go's interop client (it exits: Unsupported test case)"
           for c in ["client_compressed_unary", "server_compressed_unary",
                     "client_compressed_streaming", "server_compressed_streaming"]},
        "very_large_request": "our own case; grpc-go's client does not have it",
    },
    ("go", "server"): {
        **{c: GO_SERVER_GAPS for c in ["client_compressed_unary", "client_compressed_streaming",
                                       "server_compressed_streaming"]},
        "server_compressed_unary": "grpc-go's interop server ignores response_compressed (our "
                                   "client checks the flag of the reply, as the spec asks)",
    },
    ("python", "server"): {
        c: "a grpcio server cannot see whether a request arrived compressed (expect_compressed)"
        for c in ["client_compressed_unary", "client_compressed_streaming"]},
    ("node", "client"): {
        "client_compressed_streaming":
            "grpc-js cannot leave one message of a compressed client stream uncompressed",
    },
    ("node", "server"): {
        **{c: "a grpc-js server cannot see whether a request arrived compressed"
           for c in ["client_compressed_unary", "client_compressed_streaming"]},
        **{c: "a grpc-js server cannot choose compression per call or per message"
           for c in ["server_compressed_unary", "server_compressed_streaming"]},
    },
    ("java", "server"): {c: "grpc-java's TestServiceServer neither checks expect_compressed "
                            "nor compresses per response parameter"
                         for c in ["client_compressed_unary", "client_compressed_streaming",
                                   "server_compressed_streaming"]},
}

# grpc-java's very_large_request sends 10 MiB; its own interop server takes 16 MiB for it, and
# ours takes the same for every client. Against grpc-java's server, our client sends as much.
OUR_SERVER_FLAGS = ["--max_receive_message_size=16777216"]
OUR_CLIENT_FLAGS = {"java": ["--very_large_request_size=10485760"]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def python_stubs():
    """grpc.testing stubs for Python from our protos. The files are copied flat, so that the
    generated modules import each other as `empty_pb2` rather than shadowing grpcio's `grpc`."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="rgrpc-interop-py-"))
    for name in ["empty.proto", "messages.proto", "test.proto"]:
        text = (PROTO / name).read_text().replace('import "grpc/testing/', 'import "')
        (out / name).write_text(text)
    rc = protoc.main(["protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(out / "empty.proto"), str(out / "messages.proto"),
                      str(out / "test.proto")])
    if rc != 0:
        raise RuntimeError("protoc failed for the Python interop stubs")
    return out


class Peer:
    """How to start a peer's server and run its client."""

    def __init__(self, name, server, client, env=None):
        self.name, self.server, self.client, self.env = name, server, client, env


def make_certs():
    d = tempfile.mkdtemp(prefix="rgrpc-interop-certs-")
    subprocess.run([str(TARGET / "debug" / "make-certs"), d], check=True)
    return d


def tls_server_flags(certs):
    return ["--use_tls=true", f"--tls_cert_file={certs}/server.pem",
            f"--tls_key_file={certs}/server.key"]


def tls_client_flags(certs):
    return ["--use_tls=true", "--use_test_ca=true", f"--ca_file={certs}/ca.pem",
            "--server_host_override=foo.test.google.fr"]


def ours(tls_flags=None):
    server_flags, client_flags = tls_flags or ([], [])
    return Peer(
        "rgrpc",
        lambda port: [str(TARGET / "debug" / "interop-server"), f"--port={port}",
                      *OUR_SERVER_FLAGS, *server_flags],
        lambda port, case: [str(TARGET / "debug" / "interop-client"), "--server_host=127.0.0.1",
                            f"--server_port={port}", f"--test_case={case}", *client_flags])


def peers(selected, certs):
    out = {}
    out["rgrpc"] = ours()
    tls = (tls_server_flags(certs), tls_client_flags(certs))
    out["rgrpc+tls"] = ours(tls)
    if "go" in selected:
        go = TARGET / "go-interop"
        out["go"] = Peer(
            "go",
            lambda port: [str(go / "server"), f"--port={port}"],
            lambda port, case: [str(go / "client"), "--server_host=127.0.0.1",
                                f"--server_port={port}", f"--test_case={case}"])
        out["go+tls"] = Peer(
            "go+tls",
            lambda port: [str(go / "server"), f"--port={port}", *tls[0]],
            lambda port, case: [str(go / "client"), "--server_host=127.0.0.1",
                                f"--server_port={port}", f"--test_case={case}", *tls[1]])
    if "java" in selected:
        cp = str(ROOT / "tests" / "java" / "target" / "lib" / "*")
        java = ["java", "-cp", cp]
        out["java"] = Peer(
            "java",
            lambda port: java + ["io.grpc.testing.integration.TestServiceServer",
                                 f"--port={port}", "--use_tls=false"],
            lambda port, case: java + ["io.grpc.testing.integration.TestServiceClient",
                                       "--server_host=127.0.0.1", f"--server_port={port}",
                                       f"--test_case={case}", "--use_tls=false"])
    if "python" in selected:
        stubs = python_stubs()
        env = dict(os.environ, PYTHONPATH=str(stubs))
        py = str(HERE / "python_peer.py")
        out["python"] = Peer(
            "python",
            lambda port, py=py: [sys.executable, py, "server", f"--port={port}"],
            lambda port, case, py=py: [sys.executable, py, "client", "--server_host=127.0.0.1",
                                       f"--server_port={port}", f"--test_case={case}"],
            env)
    if "node" in selected:
        js = str(ROOT / "tests" / "node" / "interop.js")
        out["node"] = Peer(
            "node",
            lambda port, js=js: ["node", js, "server", f"--port={port}"],
            lambda port, case, js=js: ["node", js, "client", "--server_host=127.0.0.1",
                                       f"--server_port={port}", f"--test_case={case}"])
    return out


def start(cmd, env=None):
    port = free_port()
    proc = subprocess.Popen(cmd(port), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc, port


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_client(cmd, env=None):
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        return False, "timed out after 90 s"
    text = (out.stdout + out.stderr).strip()
    last = text.splitlines()[-1] if text else ""
    return out.returncode == 0, re.sub(r"\s+", " ", last)[:200]


# The scale-out cases (pick_first_unary, rpc_soak, channel_soak) run against grpc-go and
# grpc-java, whose clients implement them. pick_first_unary needs servers that fill server_id and
# a target with several addresses: for their clients, two of our servers on 127.0.0.1 and [::1]
# behind `localhost`; for our client, two of grpc-java's XdsTestServer behind an ipv4: list.
SOAK_FLAGS = ["--soak_iterations=30", "--soak_max_failures=0",
              "--soak_per_iteration_max_acceptable_latency_ms=2000",
              "--soak_overall_timeout_seconds=60", "--soak_min_time_ms_between_rpcs=5",
              "--soak_request_size=271828", "--soak_response_size=314159",
              "--soak_num_threads=3"]
SCALE_OUT_CASES = ["pick_first_unary", "rpc_soak", "channel_soak"]
SCALE_OUT_GAPS = {
    ("go", "server"): {"pick_first_unary": "grpc-go's interop server does not fill server_id "
                       "(its xDS test server does, but that module is not on the Go proxy)"},
}


def scale_out(selected, results):
    """The scale-out cases in both directions; appends to `results`."""
    ours_server = str(TARGET / "debug" / "interop-server")
    ours_client = str(TARGET / "debug" / "interop-client")
    go = TARGET / "go-interop"
    cp = str(ROOT / "tests" / "java" / "target" / "lib" / "*")
    clients = {
        "rgrpc": [ours_client],
        "go": [str(go / "client")],
        "java": ["java", "-cp", cp, "io.grpc.testing.integration.TestServiceClient",
                 "--use_tls=false"],
    }
    names = ["rgrpc"] + [p for p in ("go", "java") if p in selected]

    def record(peer, direction, role, case, run):
        reason = SCALE_OUT_GAPS.get((peer, role), {}).get(case)
        if reason:
            results.append((case, peer, direction, "n/a", reason))
            return
        ok, detail = run()
        results.append((case, peer, direction, "pass" if ok else "FAIL", detail))

    # Two of our servers on one port, one per address family, told apart by server_id.
    port = free_port()
    servers = []
    for host, sid in (("127.0.0.1", "rgrpc-v4"), ("::1", "rgrpc-v6")):
        proc = subprocess.Popen([ours_server, f"--port={port}", f"--host={host}",
                                 f"--server_id={sid}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(proc)
    try:
        wait_for_port(port, servers[0])
        for name in names:
            direction = ("our client -> our server" if name == "rgrpc"
                         else "their client -> our server")
            for case in SCALE_OUT_CASES:
                host = "localhost" if case == "pick_first_unary" else "127.0.0.1"
                cmd = clients[name] + [f"--server_host={host}", f"--server_port={port}",
                                       f"--test_case={case}"]
                if case.endswith("_soak"):
                    cmd += SOAK_FLAGS
                record(name, direction, "client", case, lambda cmd=cmd: run_client(cmd))
    finally:
        for proc in servers:
            stop(proc)

    # Our client against their servers.
    for name in names[1:]:
        if name == "java":
            xds = ["java", "-cp", cp, "io.grpc.testing.integration.XdsTestServer"]
            pick_servers = [lambda p, i=i: xds + [f"--port={p}", f"--maintenance_port={p}",
                                                  f"--server_id=java-{i}"] for i in (1, 2)]
            soak_server = lambda p: ["java", "-cp", cp,
                                     "io.grpc.testing.integration.TestServiceServer",
                                     f"--port={p}", "--use_tls=false"]
        else:
            pick_servers = None
            soak_server = lambda p: [str(go / "server"), f"--port={p}"]
        for case in SCALE_OUT_CASES:
            direction = "our client -> their server"
            procs = []
            try:
                if case == "pick_first_unary":
                    if pick_servers is None:
                        record(name, direction, "server", case, lambda: (False, "no server"))
                        continue
                    ports = []
                    for make in pick_servers:
                        proc, p = start(make)
                        procs.append(proc)
                        ports.append(p)
                    target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
                    cmd = [ours_client, f"--target={target}", f"--test_case={case}"]
                else:
                    proc, p = start(soak_server)
                    procs.append(proc)
                    cmd = [ours_client, "--server_host=127.0.0.1", f"--server_port={p}",
                           f"--test_case={case}", *SOAK_FLAGS]
                record(name, direction, "server", case, lambda cmd=cmd: run_client(cmd))
            except RuntimeError as err:
                results.append((case, name, direction, "FAIL", f"their server did not start: {err}"))
            finally:
                for proc in procs:
                    stop(proc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", default="go,java,python,node")
    args = parser.parse_args()
    selected = [p for p in args.peers.split(",") if p]
    certs = make_certs()
    all_peers = peers(selected, certs)
    # Each column: their programs, our programs talking to them, and whether it is over TLS.
    columns = ["rgrpc", "rgrpc+tls"] + [p for name in selected
                                        for p in (name, name + "+tls") if p in all_peers]
    results = []  # (case, peer, direction, outcome, detail)

    def record(peer, direction, role, case, run):
        reason = NOT_IMPLEMENTED.get((peer.removesuffix("+tls"), role), {}).get(case)
        if reason:
            results.append((case, peer, direction, "n/a", reason))
            return
        ok, detail = run()
        results.append((case, peer, direction, "pass" if ok else "FAIL", detail))

    plain, secure = all_peers["rgrpc"], all_peers["rgrpc+tls"]
    our_server, our_port = start(plain.server)
    our_tls_server, our_tls_port = start(secure.server)
    try:
        for name in columns:
            peer = all_peers[name]
            tls = name.endswith("+tls")
            us, us_port = (secure, our_tls_port) if tls else (plain, our_port)
            base = name.removesuffix("+tls")
            # Their client against our server.
            if base != "rgrpc":
                for case in CASES:
                    record(name, "their client -> our server", "client", case,
                           lambda: run_client(peer.client(us_port, case), peer.env))
            # Our client against their server (or ours, for rgrpc).
            if base == "rgrpc":
                proc, port = None, us_port
            else:
                try:
                    proc, port = start(peer.server, peer.env)
                except RuntimeError as err:
                    for case in CASES:
                        results.append((case, name, "our client -> their server", "FAIL",
                                        f"their server did not start: {err}"))
                    continue
            try:
                for case in CASES:
                    extra = OUR_CLIENT_FLAGS.get(base, []) if case == "very_large_request" else []
                    record(name, "our client -> their server", "server", case,
                           lambda: run_client(us.client(port, case) + extra))
            finally:
                if proc is not None:
                    stop(proc)
    finally:
        stop(our_server)
        stop(our_tls_server)
        shutil.rmtree(certs, ignore_errors=True)
    scale_out(selected, results)

    width = max(len(c) for c in CASES)
    print(f"\n{'case':<{width}}  {'peer':<10} {'direction':<27} result")
    for case, peer, direction, outcome, detail in results:
        line = f"{case:<{width}}  {peer:<10} {direction:<27} {outcome}"
        if outcome != "pass":
            line += f"  ({detail})"
        print(line)
    passed = sum(1 for r in results if r[3] == "pass")
    failed = sum(1 for r in results if r[3] == "FAIL")
    skipped = sum(1 for r in results if r[3] == "n/a")
    print(f"\n{len(results)} runs: {skipped} not implemented by the peer (n/a)")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
