package main

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// watchGate ends the health service's Watch streams when asked to.
//
// grpc's health.Server.Shutdown reports NOT_SERVING on every Watch stream
// but leaves the streams open, and GracefulStop waits for every open
// stream. A client that watches (client-side health checking from a proxy,
// a monitoring tool) would then hold the drain until the period runs out.
// grpc-go's own client-side health checks end their stream when the server
// sends GOAWAY, but other clients need not.
//
// The zero value is ready to use; install intercept as the server's stream
// interceptor (chain it with grpc.ChainStreamInterceptor if you have more).
type watchGate struct {
	mu      sync.Mutex
	ended   bool
	streams map[*context.CancelFunc]struct{}
}

// intercept runs Watch calls under a context that end cancels, and ends
// them with codes.Unavailable when it does; once end has been called, new
// Watch calls fail at once with that code. Other methods pass through.
func (w *watchGate) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != healthpb.Health_Watch_FullMethodName {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	w.mu.Lock()
	if w.ended {
		w.mu.Unlock()
		return errShuttingDown
	}
	if w.streams == nil {
		w.streams = map[*context.CancelFunc]struct{}{}
	}
	w.streams[&cancel] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.streams, &cancel)
		w.mu.Unlock()
	}()

	err := handler(srv, watchStream{ss, ctx})
	if ss.Context().Err() == nil && ctx.Err() != nil {
		// The client did not leave: end cancelled the stream. Say so with
		// a code that tells a client to look elsewhere, not that it
		// cancelled the call itself.
		return errShuttingDown
	}
	return err
}

var errShuttingDown = status.Error(codes.Unavailable, "grpcserver: the server is shutting down")

// end ends every Watch stream and refuses new ones. It returns how many
// streams it ended.
func (w *watchGate) end() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	for cancel := range w.streams {
		(*cancel)()
	}
	return len(w.streams)
}

// watchStream is a ServerStream whose context is the interceptor's.
type watchStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s watchStream) Context() context.Context { return s.ctx }
