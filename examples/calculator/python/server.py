"""The calculator tutorial server in Python (grpcio)."""
import argparse
from concurrent import futures

import grpc
import SimpleCal_pb2
import SimpleCal_pb2_grpc


class Cal(SimpleCal_pb2_grpc.CalServicer):
    def Add(self, request, context):
        return SimpleCal_pb2.ResultReply(number=request.number1 + request.number2)

    def Multiply(self, request, context):
        return SimpleCal_pb2.ResultReply(number=request.number1 * request.number2)


def serve(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    SimpleCal_pb2_grpc.add_CalServicer_to_server(Cal(), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    serve(parser.parse_args().addr)
