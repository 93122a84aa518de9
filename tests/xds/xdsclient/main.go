// Command xdsclient is grpc-go's own xDS client in rgrpc's xDS tests: the same calls and output
// as rgrpc's chaos-client, so that both clients are judged side by side against one control plane.
//
//	xdsclient --target=xds:///name [--calls=N] [--concurrency=C] [--interval_ms=MS]
//	          [--header=key:value] [--fail_until=N] [--duration_ms=MS]
//
// Each call is a grpc.testing.TestService/UnaryCall; it prints one line per call,
// "<unix ms> <x-server-id> ok" or "<unix ms> FAILED <code>: <message>", then
// "N passed, M failed". The bootstrap comes from GRPC_XDS_BOOTSTRAP.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds"
)

func main() {
	target := flag.String("target", "", "an xds:/// target")
	calls := flag.Int("calls", 1000, "calls in all")
	concurrency := flag.Int("concurrency", 10, "calls in flight")
	interval := flag.Int("interval_ms", 0, "pause of each worker between calls")
	header := flag.String("header", "", "key:value sent with every call")
	failUntil := flag.Int("fail_until", 0, "sent as x-fail-until")
	duration := flag.Int("duration_ms", 0, "stop starting calls after this long (0: no limit)")
	flag.Parse()
	var stopAt time.Time
	if *duration > 0 {
		stopAt = time.Now().Add(time.Duration(*duration) * time.Millisecond)
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdsclient:", err)
		os.Exit(2)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	var next, passed, failed atomic.Int64
	var mu sync.Mutex
	var lines []string
	record := func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*calls) && (stopAt.IsZero() || time.Now().Before(stopAt)) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if k, v, ok := strings.Cut(*header, ":"); ok {
					ctx = metadata.AppendToOutgoingContext(ctx, k, v)
				}
				if *failUntil > 0 {
					ctx = metadata.AppendToOutgoingContext(ctx, "x-fail-until", fmt.Sprint(*failUntil))
				}
				var md metadata.MD
				_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1},
					grpc.Header(&md), grpc.WaitForReady(true))
				cancel()
				now := time.Now().UnixMilli()
				if err != nil {
					failed.Add(1)
					s := status.Convert(err)
					record(fmt.Sprintf("%d FAILED %s: %s", now, s.Code(), s.Message()))
				} else {
					id := "?"
					if v := md.Get("x-server-id"); len(v) > 0 {
						id = v[0]
					}
					passed.Add(1)
					record(fmt.Sprintf("%d %s ok", now, id))
				}
				if *interval > 0 {
					time.Sleep(time.Duration(*interval) * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
	f := failed.Load()
	fmt.Printf("%d passed, %d failed\n", passed.Load(), f)
	if f > 0 {
		os.Exit(1)
	}
}
