"""The greeter tutorial client in Python (grpcio)."""
import argparse

import grpc
import helloworld_pb2
import helloworld_pb2_grpc


def run(addr, name, number):
    with grpc.insecure_channel(addr) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response = stub.SayHello(helloworld_pb2.HelloRequest(name=name))
        print("Greeter client received: " + response.message)
        response = stub.Square(helloworld_pb2.Number(value=float(number)))
        print("client Square %s get :%s" % (number, response.value))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    parser.add_argument("name", nargs="?", default="you")
    parser.add_argument("number", nargs="?", default="231")
    args = parser.parse_args()
    run(args.addr.replace("http://", ""), args.name, args.number)
