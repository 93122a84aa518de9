"""The route guide server in Python (grpcio), over the same JSON feature database."""
import argparse
import json
import math
import os
import time
from concurrent import futures

import grpc
import route_guide_pb2
import route_guide_pb2_grpc

DB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "features.json")


def load(path):
    with open(path) as f:
        return [route_guide_pb2.Feature(
            name=item["name"],
            location=route_guide_pb2.Point(
                latitude=item["location"]["latitude"],
                longitude=item["location"]["longitude"]))
            for item in json.load(f)]


def distance(a, b):
    lat1 = math.radians(a.latitude / 1e7)
    lat2 = math.radians(b.latitude / 1e7)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude / 1e7 - a.longitude / 1e7)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 6371000.0 * 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h))


class RouteGuide(route_guide_pb2_grpc.RouteGuideServicer):
    def __init__(self, features):
        self.features = features

    def _feature_at(self, point):
        for f in self.features:
            if f.location == point and f.name:
                return f
        return None

    def GetFeature(self, request, context):
        feature = self._feature_at(request)
        return feature or route_guide_pb2.Feature(name="", location=request)

    def ListFeatures(self, request, context):
        left = min(request.lo.longitude, request.hi.longitude)
        right = max(request.lo.longitude, request.hi.longitude)
        bottom = min(request.lo.latitude, request.hi.latitude)
        top = max(request.lo.latitude, request.hi.latitude)
        for f in self.features:
            if f.name and left <= f.location.longitude <= right and \
                    bottom <= f.location.latitude <= top:
                yield f

    def RecordRoute(self, request_iterator, context):
        count = features = 0
        metres = 0.0
        last = None
        start = time.time()
        for point in request_iterator:
            count += 1
            if self._feature_at(point):
                features += 1
            if last is not None:
                metres += distance(last, point)
            last = point
        return route_guide_pb2.RouteSummary(
            point_count=count, feature_count=features, distance=int(metres),
            elapsed_time=int(time.time() - start))

    def RouteChat(self, request_iterator, context):
        seen = {}
        for note in request_iterator:
            key = (note.location.latitude, note.location.longitude)
            for prior in seen.get(key, []):
                yield prior
            seen.setdefault(key, []).append(note)


def serve(addr, db):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuide(load(db)), server)
    server.add_insecure_port(addr)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="[::]:50051")
    parser.add_argument("--db", default=DB)
    args = parser.parse_args()
    serve(args.addr, args.db)
