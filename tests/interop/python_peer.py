"""Interop peer written with Python grpcio, from grpc/grpc doc/interop-test-descriptions.md
(grpcio ships no interop programs on PyPI).

  python_peer.py server --port=N
  python_peer.py client --server_host=H --server_port=N --test_case=NAME

The client exits 0 on pass. Cases grpcio cannot express are listed in UNSUPPORTED with the reason.
"""

import argparse
import sys
import threading
import time
from concurrent import futures

import grpc

import empty_pb2
import messages_pb2 as pb
import test_pb2_grpc

UNSUPPORTED = {}
SERVER_UNSUPPORTED = {
    "client_compressed_unary":
        "a grpcio server cannot tell whether a request arrived compressed (expect_compressed)",
    "client_compressed_streaming":
        "a grpcio server cannot tell whether a request arrived compressed (expect_compressed)",
}

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def payload(size):
    return pb.Payload(type=pb.COMPRESSABLE, body=b"\0" * size)


# ---------------------------------------------------------------- server

class TestService(test_pb2_grpc.TestServiceServicer):
    def _echo(self, context):
        md = dict(context.invocation_metadata())
        if ECHO_INITIAL in md:
            context.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
        if ECHO_TRAILING in md:
            context.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))

    def _status(self, status, context):
        if status.code != 0:
            context.abort(grpc.StatusCode(_CODES[status.code]), status.message)

    def EmptyCall(self, request, context):
        self._echo(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        self._echo(context)
        self._status(request.response_status, context)
        if request.HasField("response_compressed"):
            context.set_compression(
                grpc.Compression.Gzip if request.response_compressed.value
                else grpc.Compression.NoCompression)
        return pb.SimpleResponse(payload=payload(request.response_size))

    CacheableUnaryCall = UnaryCall

    def _respond(self, request, context):
        for p in request.response_parameters:
            if p.interval_us:
                time.sleep(p.interval_us / 1e6)
            if p.HasField("compressed") and not p.compressed.value:
                context.disable_next_message_compression()
            yield pb.StreamingOutputCallResponse(payload=payload(p.size))

    def StreamingOutputCall(self, request, context):
        self._echo(context)
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        yield from self._respond(request, context)
        self._status(request.response_status, context)

    def StreamingInputCall(self, request_iterator, context):
        self._echo(context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return pb.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        self._echo(context)
        for request in request_iterator:
            self._status(request.response_status, context)
            yield from self._respond(request, context)

    def HalfDuplexCall(self, request_iterator, context):
        self._echo(context)
        requests = list(request_iterator)
        for request in requests:
            self._status(request.response_status, context)
            yield from self._respond(request, context)


_CODES = {c.value[0]: c.value for c in grpc.StatusCode}


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


# ---------------------------------------------------------------- client

def ensure(ok, what):
    if not ok:
        raise AssertionError(what)


def expect_code(fn, code, message=None):
    try:
        fn()
    except grpc.RpcError as err:
        ensure(err.code() == code, f"expected {code}, got {err.code()}: {err.details()}")
        if message is not None:
            ensure(err.details() == message, f"message {err.details()!r}")
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def large_request(**kw):
    return pb.SimpleRequest(response_size=314159, payload=payload(271828), **kw)


def output_request(sizes, payload_size=0, **kw):
    return pb.StreamingOutputCallRequest(
        response_parameters=[pb.ResponseParameters(size=s) for s in sizes],
        payload=payload(payload_size), **kw)


def run_case(case, channel):
    stub = test_pb2_grpc.TestServiceStub(channel)
    if case == "empty_unary":
        ensure(stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty(), "not empty")
    elif case == "large_unary":
        ensure(len(stub.UnaryCall(large_request()).payload.body) == 314159, "size")
    elif case == "client_compressed_unary":
        expect_code(lambda: stub.UnaryCall(large_request(
            expect_compressed=pb.BoolValue(value=True))), grpc.StatusCode.INVALID_ARGUMENT)
        r = stub.UnaryCall(large_request(expect_compressed=pb.BoolValue(value=True)),
                           compression=grpc.Compression.Gzip)
        ensure(len(r.payload.body) == 314159, "size")
        r = stub.UnaryCall(large_request(expect_compressed=pb.BoolValue(value=False)))
        ensure(len(r.payload.body) == 314159, "size")
    elif case == "server_compressed_unary":
        for value in (True, False):
            r = stub.UnaryCall(large_request(response_compressed=pb.BoolValue(value=value)))
            ensure(len(r.payload.body) == 314159, "size")
    elif case == "client_compressed_streaming":
        # The probe: a message that claims compression, sent uncompressed, is refused.
        probe = pb.StreamingInputCallRequest(expect_compressed=pb.BoolValue(value=True),
                                             payload=payload(27182))
        expect_code(lambda: stub.StreamingInputCall(iter([probe])),
                    grpc.StatusCode.INVALID_ARGUMENT)
        # grpcio compresses every message of a compressed call, so the second message (which
        # does not ask for compression) arrives compressed too; the spec allows that.
        reqs = [probe, pb.StreamingInputCallRequest(expect_compressed=pb.BoolValue(value=False),
                                                    payload=payload(45904))]
        r = stub.StreamingInputCall(iter(reqs), compression=grpc.Compression.Gzip)
        ensure(r.aggregated_payload_size == 73086, f"sum {r.aggregated_payload_size}")
    elif case == "client_streaming":
        reqs = [pb.StreamingInputCallRequest(payload=payload(n)) for n in (27182, 8, 1828, 45904)]
        ensure(stub.StreamingInputCall(iter(reqs)).aggregated_payload_size == 74922, "sum")
    elif case == "server_streaming":
        sizes = [31415, 9, 2653, 58979]
        got = [len(r.payload.body) for r in stub.StreamingOutputCall(output_request(sizes))]
        ensure(got == sizes, f"sizes {got}")
    elif case == "server_compressed_streaming":
        req = pb.StreamingOutputCallRequest(response_parameters=[
            pb.ResponseParameters(size=31415, compressed=pb.BoolValue(value=True)),
            pb.ResponseParameters(size=92653, compressed=pb.BoolValue(value=False))])
        got = [len(r.payload.body) for r in stub.StreamingOutputCall(req)]
        ensure(got == [31415, 92653], f"sizes {got}")
    elif case == "ping_pong":
        pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
        go = threading.Semaphore(0)

        def requests():
            for size, body in pairs:
                yield output_request([size], body)
                go.acquire(timeout=30)

        for (size, _), r in zip(pairs, stub.FullDuplexCall(requests())):
            ensure(len(r.payload.body) == size, "size")
            go.release()
    elif case == "empty_stream":
        ensure(list(stub.FullDuplexCall(iter([]))) == [], "responses")
    elif case == "timeout_on_sleeping_server":
        # The request stream stays open, as in the spec: a half-closed stream lets a fast server
        # finish the whole call inside the 1 ms deadline.
        stop = threading.Event()

        def requests():
            yield output_request([31415], 27182)
            stop.wait(30)

        def call():
            try:
                for _ in stub.FullDuplexCall(requests(), timeout=0.001):
                    pass
            finally:
                stop.set()
        expect_code(call, grpc.StatusCode.DEADLINE_EXCEEDED)
    elif case == "cancel_after_begin":
        future = stub.StreamingInputCall.future(_forever())
        time.sleep(0.1)
        future.cancel()
        ensure(future.cancelled(), "not cancelled")
    elif case == "cancel_after_first_response":
        go = threading.Event()

        def requests():
            yield output_request([31415], 27182)
            go.wait(30)

        call = stub.FullDuplexCall(requests())
        ensure(len(next(call).payload.body) == 31415, "size")
        call.cancel()
        go.set()
        ensure(call.code() == grpc.StatusCode.CANCELLED, f"code {call.code()}")
    elif case == "custom_metadata":
        md = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))
        r, call = stub.UnaryCall.with_call(large_request(), metadata=md)
        ensure(md[0] in call.initial_metadata(), "initial not echoed")
        ensure(md[1] in call.trailing_metadata(), "trailing not echoed")
        call = stub.FullDuplexCall(iter([output_request([314159], 271828)]), metadata=md)
        ensure(len(next(call).payload.body) == 314159, "size")
        ensure(md[0] in call.initial_metadata(), "duplex initial not echoed")
        list(call)
        ensure(md[1] in call.trailing_metadata(), "duplex trailing not echoed")
    elif case in ("status_code_and_message", "special_status_message"):
        message = ("\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
                   if case == "special_status_message" else "test status message")
        status = pb.EchoStatus(code=2, message=message)
        expect_code(lambda: stub.UnaryCall(pb.SimpleRequest(response_status=status)),
                    grpc.StatusCode.UNKNOWN, message)
        if case == "status_code_and_message":
            expect_code(lambda: list(stub.FullDuplexCall(iter([pb.StreamingOutputCallRequest(
                response_status=status)]))), grpc.StatusCode.UNKNOWN, message)
    elif case == "unimplemented_method":
        expect_code(lambda: stub.UnimplementedCall(empty_pb2.Empty()),
                    grpc.StatusCode.UNIMPLEMENTED)
    elif case == "unimplemented_service":
        other = test_pb2_grpc.UnimplementedServiceStub(channel)
        expect_code(lambda: other.UnimplementedCall(empty_pb2.Empty()),
                    grpc.StatusCode.UNIMPLEMENTED)
    elif case == "very_large_request":
        r = stub.UnaryCall(pb.SimpleRequest(response_size=10, payload=payload(4 * 1024 * 1024 - 64)))
        ensure(len(r.payload.body) == 10, "size")
    else:
        raise AssertionError(f"unknown test case {case}")


def _forever():
    while True:
        time.sleep(3600)
        yield pb.StreamingInputCallRequest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int)
    parser.add_argument("--test_case")
    parser.add_argument("--use_tls", default="false")
    args = parser.parse_args()
    if args.role == "server":
        serve(args.port)
        return
    if args.test_case in UNSUPPORTED:
        print(f"UNSUPPORTED {args.test_case}: {UNSUPPORTED[args.test_case]}")
        sys.exit(3)
    with grpc.insecure_channel(f"{args.server_host}:{args.server_port}") as channel:
        try:
            run_case(args.test_case, channel)
        except (AssertionError, grpc.RpcError) as err:
            print(f"FAIL {args.test_case}: {err}")
            sys.exit(1)
    print(f"PASS {args.test_case}")


if __name__ == "__main__":
    main()
