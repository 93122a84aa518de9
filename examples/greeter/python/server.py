"""The greeter tutorial server in Python (grpcio)."""
import argparse
import math
from concurrent import futures

import grpc
import helloworld_pb2
import helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)

    def Square(self, request, context):
        if request.value < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "cannot take the square root of %s" % request.value)
        return helloworld_pb2.Number(value=math.sqrt(request.value))


def serve(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    serve(parser.parse_args().addr)
