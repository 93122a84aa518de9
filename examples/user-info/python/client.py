"""The user-info tutorial client in Python (grpcio)."""
import argparse

import grpc
import hello_pb2
import hello_pb2_grpc


def run(addr, user_id, name):
    with grpc.insecure_channel(addr) as channel:
        stub = hello_pb2_grpc.UserInfoStub(channel)
        response = stub.Info(hello_pb2.User(id=user_id, name=name))
    print("用户信息: " + response.message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    parser.add_argument("id", nargs="?", default="1")
    parser.add_argument("name", nargs="?", default="zhangsan")
    args = parser.parse_args()
    run(args.addr.replace("http://", ""), args.id, args.name)
