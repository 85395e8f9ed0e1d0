package lameduck

import (
	"context"
	"errors"
	"net"
	"sync"
)

// GRPCServer is the part of [*grpc.Server] that [FromGRPC] uses, so that this
// package need not import gRPC.
//
// [*grpc.Server]: https://pkg.go.dev/google.golang.org/grpc#Server
type GRPCServer interface {
	Serve(net.Listener) error
	GracefulStop()
	Stop()
}

// FromGRPC makes a [Server] of a gRPC server that serves on ln.
//
// Shutdown calls GracefulStop, which stops accepting connections and waits
// for the RPCs in flight. GracefulStop has no deadline of its own; Shutdown
// gives it one: when ctx ends first, Shutdown calls Stop, which cancels the
// RPCs still running, and returns ctx's error. Close calls Stop. Serve
// returns nil after either, and does not serve at all (it closes ln) when
// Shutdown or Close came first.
//
// A nil s or ln makes NewRunner and Serve fail.
func FromGRPC(s GRPCServer, ln net.Listener) Server {
	return &grpcServer{s: s, ln: ln}
}

type grpcServer struct {
	s  GRPCServer
	ln net.Listener

	mu       sync.Mutex
	started  bool
	stopping bool
}

func (g *grpcServer) validate() error {
	switch {
	case isNil(g.s):
		return errors.New("lameduck: FromGRPC: nil GRPCServer")
	case isNil(g.ln):
		return errors.New("lameduck: FromGRPC: nil net.Listener")
	}
	return nil
}

func (g *grpcServer) Serve(context.Context) error {
	if err := g.validate(); err != nil {
		return err
	}
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("lameduck: FromGRPC's Serve called more than once")
	}
	g.started = true
	stopping := g.stopping
	g.mu.Unlock()
	if stopping {
		g.ln.Close()
		return nil
	}
	err := g.s.Serve(g.ln)
	if g.isStopping() {
		// gRPC returns nil after a stop, except when the stop came before
		// Serve began, when it returns grpc.ErrServerStopped; either way
		// the server stopped because it was asked to.
		return nil
	}
	return err
}

// stop marks the server as stopping. If Serve has not begun, it closes ln,
// which Serve will now never use.
func (g *grpcServer) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopping = true
	if !g.started {
		g.ln.Close()
	}
}

func (g *grpcServer) isStopping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopping
}

func (g *grpcServer) Shutdown(ctx context.Context) error {
	if err := g.validate(); err != nil {
		return err
	}
	g.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.s.GracefulStop()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Stop cancels what GracefulStop waits for, so it returns too.
		g.s.Stop()
		<-done
		return ctx.Err()
	}
}

func (g *grpcServer) Close() error {
	if err := g.validate(); err != nil {
		return err
	}
	g.stop()
	g.s.Stop()
	return nil
}
