"""The route guide client in Python (grpcio): one call of each kind, fixed inputs."""
import argparse

import grpc
import route_guide_pb2 as pb
import route_guide_pb2_grpc

ROUTE = [
    (401000000, -748000000), (410123457, -732012989), (405246914, -735025978),
    (414370371, -738038967), (409493828, -741051956), (404617285, -744064945),
    (413740742, -747077934), (408864199, -731090923), (403987656, -734103912),
    (413111113, -737116901), (402000000, -747000000), (402500000, -746500000),
]

NOTES = [("First message", 1), ("Second message", 2), ("Third message", 3),
         ("Fourth message", 1), ("Fifth message", 2), ("Sixth message", 3)]


def at(p):
    return "(%d, %d)" % (p.latitude, p.longitude)


def run(addr):
    with grpc.insecure_channel(addr) as channel:
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)
        for lat, lon in [(410123457, -732012989), (0, 0)]:
            feature = stub.GetFeature(pb.Point(latitude=lat, longitude=lon))
            if feature.name:
                print('GetFeature: "%s" at %s' % (feature.name, at(feature.location)))
            else:
                print("GetFeature: no feature at %s" % at(feature.location))

        rect = pb.Rectangle(lo=pb.Point(latitude=400000000, longitude=-750000000),
                            hi=pb.Point(latitude=410000000, longitude=-740000000))
        n = 0
        for feature in stub.ListFeatures(rect):
            print('ListFeatures: "%s" at %s' % (feature.name, at(feature.location)))
            n += 1
        print("ListFeatures: %d features" % n)

        summary = stub.RecordRoute(iter(pb.Point(latitude=a, longitude=b) for a, b in ROUTE))
        print("RecordRoute: %d points, %d features, %d metres"
              % (summary.point_count, summary.feature_count, summary.distance))

        notes = iter(pb.RouteNote(location=pb.Point(latitude=0, longitude=lon), message=m)
                     for m, lon in NOTES)
        for note in stub.RouteChat(notes):
            print('RouteChat: "%s" at %s' % (note.message, at(note.location)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="localhost:50051")
    run(parser.parse_args().addr.replace("http://", ""))
