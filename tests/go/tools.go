//go:build tools

// Package tools pins the grpc-go interop programs so that `go mod tidy` keeps their
// dependencies; scripts/test.sh builds them with `go build`.
package tools

import (
	_ "google.golang.org/grpc/interop/client"
	_ "google.golang.org/grpc/interop/server"
)
