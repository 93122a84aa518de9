"""The multiplexing tutorial client in Python (grpcio)."""
import argparse

import grpc
import muxs_pb2
import muxs_pb2_grpc


def run(addr):
    with grpc.insecure_channel(addr) as channel:
        stub = muxs_pb2_grpc.FileControllerStub(channel)
        response = stub.Read(muxs_pb2.Files(filename="aaaa.txt"))
        print("File Read: " + response.text)
        response = stub.Write(muxs_pb2.Files(filename="aaaa2.txt", text="37183714ghgjh243"))
        print("File Write: " + str(response.code))
        response = stub.Read(muxs_pb2.Files(filename="aaaa2.txt"))
        print("File Read: " + response.text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    run(parser.parse_args().addr.replace("http://", ""))
