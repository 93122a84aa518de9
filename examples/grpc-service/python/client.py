"""The grpc-service tutorial client in Python (grpcio)."""
import argparse

import grpc
import hello_pb2
import hello_pb2_grpc


def run(addr, data, skill):
    with grpc.insecure_channel(addr) as channel:
        stub = hello_pb2_grpc.GrpcServiceStub(channel)
        response = stub.hello(hello_pb2.HelloRequest(data=data, skill=hello_pb2.Skill(name=skill)))
    print("received: " + response.result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50052")
    parser.add_argument("data", nargs="?", default="xiao gang")
    parser.add_argument("skill", nargs="?", default="engineer")
    args = parser.parse_args()
    run(args.addr.replace("http://", ""), args.data, args.skill)
