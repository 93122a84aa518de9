"""The calculator tutorial client in Python (grpcio)."""
import argparse

import grpc
import SimpleCal_pb2
import SimpleCal_pb2_grpc


def run(addr, a, b):
    with grpc.insecure_channel(addr) as channel:
        stub = SimpleCal_pb2_grpc.CalStub(channel)
        response = stub.Add(SimpleCal_pb2.AddRequest(number1=a, number2=b))
        print("%d + %d = %d" % (a, b, response.number))
        response = stub.Multiply(SimpleCal_pb2.MultiplyRequest(number1=a, number2=b))
        print("%d * %d = %d" % (a, b, response.number))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    parser.add_argument("a", nargs="?", type=int, default=100)
    parser.add_argument("b", nargs="?", type=int, default=300)
    args = parser.parse_args()
    run(args.addr.replace("http://", ""), args.a, args.b)
