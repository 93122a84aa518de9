// Command retryserver is a grpc-go server for rgrpc's retry tests: grpc.testing.TestService
// calls fail until the client's attempt number (1 + grpc-previous-rpc-attempts) reaches the
// number the call asks for in its x-fail-until header.
//
//	retryserver --port=N
//
// Headers a call may send:
//
//	x-fail-until   fail the attempts numbered below this (default 0: never fail)
//	x-fail-code    the status code of those failures (default 14, UNAVAILABLE)
//	x-pushback-ms  sent back as grpc-retry-pushback-ms with each failure
//
// A successful UnaryCall or StreamingInputCall answers with the header x-attempt (and x-server-id
// with --id=NAME). EmptyCall answers with x-calls: the attempts of UnaryCall and
// StreamingInputCall seen so far.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var (
	calls    atomic.Int64
	serverID = flag.String("id", "", "sent back as x-server-id on successful calls")
)

type server struct {
	testgrpc.UnimplementedTestServiceServer
}

func header(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// attempt counts the call and fails it when its attempt is below x-fail-until.
func attempt(ctx context.Context) (int, error) {
	calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	previous, _ := strconv.Atoi(header(md, "grpc-previous-rpc-attempts"))
	n := previous + 1
	until, _ := strconv.Atoi(header(md, "x-fail-until"))
	if n >= until {
		return n, nil
	}
	code := codes.Unavailable
	if c, err := strconv.Atoi(header(md, "x-fail-code")); err == nil {
		code = codes.Code(c)
	}
	if p := header(md, "x-pushback-ms"); p != "" {
		grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", p))
	}
	return n, status.Errorf(code, "attempt %d fails", n)
}

func (server) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	grpc.SetHeader(ctx, metadata.Pairs("x-calls", strconv.FormatInt(calls.Load(), 10)))
	return &testgrpc.Empty{}, nil
}

func (server) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	n, err := attempt(ctx)
	if err != nil {
		return nil, err
	}
	grpc.SetHeader(ctx, metadata.Pairs("x-attempt", strconv.Itoa(n), "x-server-id", *serverID))
	body := make([]byte, in.GetResponseSize())
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: body}}, nil
}

func (server) StreamingInputCall(stream testgrpc.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
	// The whole stream is read before failing, so a retry must replay all of it.
	n, err := attempt(stream.Context())
	if err != nil {
		return err
	}
	stream.SetHeader(metadata.Pairs("x-attempt", strconv.Itoa(n)))
	return stream.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
}

func main() {
	port := flag.Int("port", 0, "port to listen on (127.0.0.1)")
	flag.Parse()
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", lis.Addr())
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, server{})
	log.Fatal(s.Serve(lis))
}
