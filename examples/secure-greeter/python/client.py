"""The secure greeter client in Python (grpcio): TLS channel credentials composed with an access
token, as the gRPC auth guide shows."""
import argparse
import os

import grpc
import greeter_pb2
import greeter_pb2_grpc


def run(args):
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    channel_creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None)
    if args.token:
        channel_creds = grpc.composite_channel_credentials(
            channel_creds, grpc.access_token_call_credentials(args.token))
    with grpc.secure_channel(args.addr.replace("https://", ""), channel_creds) as channel:
        reply = greeter_pb2_grpc.GreeterStub(channel).SayHello(
            greeter_pb2.HelloRequest(name=args.name))
    print("Greeter client received: " + reply.message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--token", default=os.environ.get("SECURE_GREETER_TOKEN"))
    parser.add_argument("name", nargs="?", default="you")
    run(parser.parse_args())
