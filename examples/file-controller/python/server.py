"""The multiplexing tutorial server in Python (grpcio): Greeter and FileController on one port.

Files are kept under a root directory (--root, else MUXS_DATA_DIR, else a temporary one)."""
import argparse
import os
import tempfile
from concurrent import futures

import grpc
import muxs_pb2
import muxs_pb2_grpc


class Greeter(muxs_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        return muxs_pb2.HelloReply(message="Hello, %s!" % request.name)


class FileController(muxs_pb2_grpc.FileControllerServicer):
    def __init__(self, root):
        self.root = root

    def _path(self, name, context):
        parts = name.split("/")
        if not name or os.path.isabs(name) or any(p in ("", ".", "..") for p in parts):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "not a path inside the root")
        return os.path.join(self.root, name)

    def Read(self, request, context):
        path = self._path(request.filename, context)
        try:
            with open(path) as f:
                return muxs_pb2.Content(text=f.read())
        except OSError:
            return muxs_pb2.Content(text="Error: read failed")

    def Write(self, request, context):
        path = self._path(request.filename, context)
        try:
            fd, temp = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "w") as f:
                f.write(request.text)
            os.replace(temp, path)
            return muxs_pb2.Status(code=0)
        except OSError:
            return muxs_pb2.Status(code=1)


def serve(addr, root):
    os.makedirs(root, exist_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    muxs_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    muxs_pb2_grpc.add_FileControllerServicer_to_server(FileController(root), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    parser.add_argument("--root", default=os.environ.get(
        "MUXS_DATA_DIR", os.path.join(tempfile.gettempdir(), "muxs-python-data")))
    args = parser.parse_args()
    serve(args.addr, args.root)
