// Command pingclient is grpc-go's client with an aggressive keepalive against a server that
// enforces a PING policy, for rgrpc's keepalive enforcement test. It dials --addr with
// keepalive every --time (grpc-go's floor is 10 s) and PINGs allowed without calls, makes a
// call, stays idle for --idle, makes a call (on a new connection if the server sent the first
// one away), stays idle for --idle2 and makes a last call. It prints one JSON line: the seconds
// since start of each dial, of each GOAWAY too_many_pings grpc-go logged, and whether every
// call succeeded.
//
//	pingclient --addr=127.0.0.1:PORT [--time=10s] [--idle=45s] [--idle2=55s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/emptypb"
)

// events records what happened, in seconds since the start.
type events struct {
	mu           sync.Mutex
	start        time.Time
	Dials        []float64 `json:"dials"`
	TooManyPings []float64 `json:"too_many_pings"`
	CallsOK      int       `json:"calls_ok"`
	Errors       []string  `json:"errors"`
}

func (e *events) since() float64 { return time.Since(e.start).Seconds() }

// errorLog receives grpc-go's ERROR log lines and notes the too_many_pings GOAWAYs.
type errorLog struct{ e *events }

func (l errorLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("too_many_pings")) {
		l.e.mu.Lock()
		l.e.TooManyPings = append(l.e.TooManyPings, l.e.since())
		l.e.mu.Unlock()
	}
	return len(p), nil
}

func main() {
	addr := flag.String("addr", "", "server address")
	every := flag.Duration("time", 10*time.Second, "keepalive time")
	idle := flag.Duration("idle", 45*time.Second, "idle time after the first call")
	idle2 := flag.Duration("idle2", 55*time.Second, "idle time after the second call")
	flag.Parse()
	e := &events{start: time.Now(), Dials: []float64{}, TooManyPings: []float64{}, Errors: []string{}}
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, errorLog{e}))
	dialer := func(ctx context.Context, target string) (net.Conn, error) {
		e.mu.Lock()
		e.Dials = append(e.Dials, e.since())
		e.mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", target)
	}
	conn, err := grpc.NewClient(*addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: *every, Timeout: 5 * time.Second, PermitWithoutStream: true,
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	call := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The echo server's Unary takes and returns messages whose defaults encode as nothing.
		err := conn.Invoke(ctx, "/test.echo.Echo/Unary", &emptypb.Empty{}, &emptypb.Empty{},
			grpc.WaitForReady(true))
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.Errors = append(e.Errors, fmt.Sprintf("%.1fs: %v", e.since(), err))
		} else {
			e.CallsOK++
		}
	}
	call()
	time.Sleep(*idle)
	call()
	time.Sleep(*idle2)
	call()
	e.mu.Lock()
	out, _ := json.Marshal(e)
	e.mu.Unlock()
	fmt.Println(string(out))
}
