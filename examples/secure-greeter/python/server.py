"""The secure greeter in Python (grpcio): TLS, optional mutual TLS, and a bearer token check."""
import argparse
import hmac
import os
from concurrent import futures

import grpc
import greeter_pb2
import greeter_pb2_grpc


class Greeter(greeter_pb2_grpc.GreeterServicer):
    def __init__(self, token):
        self.expected = "Bearer " + token

    def SayHello(self, request, context):
        given = dict(context.invocation_metadata()).get("authorization", "")
        if not given:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required")
        if not hmac.compare_digest(given, self.expected):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not valid")
        return greeter_pb2.HelloReply(message="Hello, %s!" % request.name)


def serve(args):
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    client_ca = read(args.client_ca) if args.client_ca else None
    creds = grpc.ssl_server_credentials([(read(args.key), read(args.cert))],
                                        root_certificates=client_ca,
                                        require_client_auth=client_ca is not None)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(args.token), server)
    server.add_secure_port(args.addr, creds)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--token", default=os.environ.get("SECURE_GREETER_TOKEN"))
    serve(parser.parse_args())
