"""The route guide tutorial server in Python with grpcio-reflection turned on, so the rgrpc CLI is
tried on a server we did not write."""
import sys

import grpc
from grpc_reflection.v1alpha import reflection

sys.path.insert(0, sys.argv[2])  # the tutorial's Python directory
import server as tutorial  # noqa: E402
import route_guide_pb2  # noqa: E402
import route_guide_pb2_grpc  # noqa: E402
from concurrent import futures  # noqa: E402


def main():
    port = int(sys.argv[1])
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(
        tutorial.RouteGuide(tutorial.load(tutorial.DB)), srv)
    names = (route_guide_pb2.DESCRIPTOR.services_by_name["RouteGuide"].full_name,
             reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, srv)
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    srv.wait_for_termination()


if __name__ == "__main__":
    main()
