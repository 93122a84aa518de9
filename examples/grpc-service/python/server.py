"""The grpc-service tutorial server in Python (grpcio)."""
import argparse
from concurrent import futures

import grpc
import hello_pb2
import hello_pb2_grpc


class GrpcService(hello_pb2_grpc.GrpcServiceServicer):
    def hello(self, request, context):
        result = request.data + request.skill.name + " this is gprc test service"
        return hello_pb2.HelloResponse(result=result, map_result={"12": 1232})


def serve(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    hello_pb2_grpc.add_GrpcServiceServicer_to_server(GrpcService(), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50052")
    serve(parser.parse_args().addr)
