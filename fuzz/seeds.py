"""Writes the small seed corpora in fuzz/seeds/: hand-built inputs that reach each target's
deeper paths (a whole gRPC call in HTTP/2 frames, real trailers, compressed messages), so the
fuzzer starts from valid traffic rather than from nothing. Run: python3 fuzz/seeds.py"""

import gzip
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def grpc(message, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman coding."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


SETTINGS, HEADERS, DATA, RST, PING, GOAWAY, WINDOW = 4, 1, 0, 3, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1
# BytesValue{value: "hello"}
HELLO = b"\x0a\x05hello"


def request_headers(path, extra=()):
    block = b"\x83\x86"  # :method POST, :scheme http (static table)
    block += literal(":path", path) + literal(":authority", "fuzz")
    block += literal("content-type", "application/grpc") + literal("te", "trailers")
    for name, value in extra:
        block += literal(name, value)
    return block


def server_seeds():
    settings = frame(SETTINGS, 0, 0, b"") + frame(SETTINGS, ACK, 0, b"")
    unary = frame(HEADERS, END_HEADERS, 1, request_headers("/fuzz.Echo/Unary"))
    unary += frame(DATA, END_STREAM, 1, grpc(HELLO))
    put("server_connection", "unary", b"\x00" + settings + unary)
    gz = frame(HEADERS, END_HEADERS, 1, request_headers(
        "/fuzz.Echo/Client", [("grpc-encoding", "gzip"), ("grpc-timeout", "1S")]))
    gz += frame(DATA, 0, 1, grpc(gzip.compress(HELLO), True))
    gz += frame(DATA, END_STREAM, 1, grpc(HELLO))
    put("server_connection", "client_streaming_gzip", b"\x00" + settings + gz)
    bidi = frame(HEADERS, END_HEADERS, 1, request_headers("/fuzz.Echo/Bidi"))
    bidi += frame(DATA, 0, 1, grpc(HELLO)) + frame(WINDOW, 0, 0, struct.pack(">I", 1 << 20))
    bidi += frame(PING, 0, 0, b"12345678") + frame(RST, 0, 1, struct.pack(">I", 8))
    bidi += frame(HEADERS, END_HEADERS | END_STREAM, 3, request_headers("/fuzz.Echo/Server"))
    put("server_connection", "bidi_reset_then_server", b"\x01" + settings + bidi)
    put("server_connection", "goaway", b"\x00" + settings + frame(GOAWAY, 0, 0, b"\0\0\0\0\0\0\0\0"))


def response(stream, messages, status="0", extra_trailers=()):
    head = b"\x88" + literal("content-type", "application/grpc")  # :status 200
    out = frame(HEADERS, END_HEADERS, stream, head)
    for m in messages:
        out += frame(DATA, 0, stream, m)
    trailers = literal("grpc-status", status)
    for name, value in extra_trailers:
        trailers += literal(name, value)
    return out + frame(HEADERS, END_HEADERS | END_STREAM, stream, trailers)


def client_seeds():
    ack = frame(SETTINGS, ACK, 0, b"")
    ok = response(1, [grpc(HELLO)]) + response(3, [grpc(HELLO), grpc(HELLO)])
    put("client_connection", "both_ok", b"\x00" + ack + ok)
    failed = response(1, [], "3", [("grpc-message", "bad%20input")])
    failed += response(3, [grpc(HELLO)], "14")
    put("client_connection", "failed", b"\x00" + ack + failed)
    only = frame(HEADERS, END_HEADERS | END_STREAM, 1,
                 b"\x88" + literal("content-type", "application/grpc") + literal("grpc-status", "5"))
    put("client_connection", "trailers_only", b"\x01" + ack + only + frame(RST, 0, 3, struct.pack(">I", 7)))
    http = frame(HEADERS, END_HEADERS | END_STREAM, 1, literal(":status", "503"))
    put("client_connection", "http_503_goaway", b"\x00" + ack + http + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))


def small_seeds():
    put("framing", "two", b"\x40\x07" + grpc(HELLO) + grpc(b"", True))
    put("framing", "truncated", b"\x10\x01" + grpc(HELLO)[:-2])
    put("framing", "too_large", b"\x01\x05" + grpc(b"x" * 40))
    for text in [b"1S", b"100m", b"99999999H", b"5u", b"300n"]:
        put("metadata", text.decode(), text)
    put("metadata", "headers", b"grpc-timeout:1S\nx-a-bin:AAEC\nx-b:one\nx-b:two\ncontent-type:application/grpc\n")
    put("metadata", "duration", struct.pack("<QI", 3600, 500))
    put("status_from_trailers", "invalid", b"grpc-status:3\ngrpc-message:bad%20input%e2%9c%93\n")
    put("status_from_trailers", "details", b"grpc-status:10\ngrpc-status-details-bin:CAoSA2FiYw\ngrpc-retry-pushback-ms:10\n")
    put("status_from_trailers", "ok", b"grpc-status:0\n")
    put("decompress", "gzip", b"\x00\x00\x01" + gzip.compress(b"hello" * 20))
    put("decompress", "deflate", b"\x01\x10\x00" + zlib.compress(b"hello" * 20))
    put("decompress", "bomb", b"\x00\x40\x00" + gzip.compress(b"\0" * 100000))
    put("proto_front_end", "greeter", b'''syntax = "proto3";
package demo.v1;
import "google/protobuf/empty.proto";
service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
  rpc Chat(stream HelloRequest) returns (stream HelloReply);
  rpc Connect(google.protobuf.Empty) returns (google.protobuf.Empty);
}
message HelloRequest { string name = 1; optional int32 times = 2; map<string, int64> tags = 3; }
message HelloReply { oneof kind { string message = 1; bytes raw = 2; } enum E { A = 0; B = 1; } }
''')
    put("proto_front_end", "proto2", b'''syntax = "proto2";
message M { required int32 a = 1 [default = 5]; extensions 100 to 200; group G = 2 { optional string s = 3; } }
extend M { optional string ext = 100; }
''')


server_seeds()
client_seeds()
small_seeds()
