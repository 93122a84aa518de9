"""The Echo service of tests/rust/proto/echo.proto, written with grpcio as a Python user would."""

import argparse
import threading
import time
from concurrent import futures

import grpc

import echo_pb2
import echo_pb2_grpc


def _reply(request, index=0):
    return echo_pb2.EchoResponse(
        message=request.message, padding=b"\xab" * request.reply_size, index=index
    )


def _check_fail(request, context):
    if request.fail_code:
        context.abort(grpc.StatusCode(_CODES[request.fail_code]), request.message)


_CODES = {c.value[0]: c.value for c in grpc.StatusCode}


class Echo(echo_pb2_grpc.EchoServicer):
    def Unary(self, request, context):
        _check_fail(request, context)
        if request.delay_ms:
            time.sleep(request.delay_ms / 1000)
        echo = dict(context.invocation_metadata()).get("x-echo")
        if echo is not None:
            context.send_initial_metadata((("x-echo", echo),))
            context.set_trailing_metadata((("x-echo-trailer", echo),))
        return _reply(request)

    def ServerStream(self, request, context):
        _check_fail(request, context)
        for i in range(request.count):
            if request.delay_ms:
                time.sleep(request.delay_ms / 1000)
            yield _reply(request, i)

    def ClientStream(self, request_iterator, context):
        joined = []
        for request in request_iterator:
            _check_fail(request, context)
            joined.append(request.message)
        return echo_pb2.EchoResponse(message=",".join(joined), index=len(joined))

    def Bidi(self, request_iterator, context):
        for i, request in enumerate(request_iterator):
            _check_fail(request, context)
            yield _reply(request, i)

    def WaitForCancel(self, request, context):
        done = threading.Event()
        context.add_callback(done.set)
        done.wait(60)
        context.abort(grpc.StatusCode.CANCELLED, "cancelled")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
