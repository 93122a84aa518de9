"""The user-info tutorial server in Python (grpcio)."""
import argparse
from concurrent import futures

import grpc
import hello_pb2
import hello_pb2_grpc


class UserInfo(hello_pb2_grpc.UserInfoServicer):
    def Info(self, request, context):
        return hello_pb2.Reply(message="id: %s; name: %s" % (request.id, request.name))


def serve(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    hello_pb2_grpc.add_UserInfoServicer_to_server(UserInfo(), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    serve(parser.parse_args().addr)
