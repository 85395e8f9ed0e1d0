package lameduck

import (
	"context"
	"errors"
	"net"
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
// Shutdown calls GracefulStop, which refuses new connections, tells clients
// to go elsewhere (HTTP/2 GOAWAY) and waits for the RPCs in flight; Shutdown
// returns nil once they have all finished. GracefulStop has no deadline of
// its own, so Shutdown supplies one: when ctx ends first, Shutdown returns
// ctx's error at once, leaving the RPCs still in flight to Close, as
// net/http's Shutdown does. Close calls Stop, which closes every connection
// and cancels the context of every handler still running. (A Runner calls
// Close as soon as the period ends, once its stop report has counted what
// was still in flight.)
//
// A handler that ignores its context keeps running after Stop, and so after
// Run has returned, exactly as it would under gRPC alone: its client has
// already seen the connection close, and the GracefulStop that Shutdown
// started returns only when the last such handler does. (With the
// grpc.WaitForHandlers server option, Stop itself waits for them, and so do
// Shutdown, Close and Serve; Run then names them as stuck once its grace
// after Close has passed.)
//
// Serve returns nil after a stop that Shutdown or Close asked for, and does
// not serve at all (it closes ln) when one of them came first. When gRPC's
// Serve fails on its own (the listener broke), Serve calls Stop before it
// returns the error, so that connections accepted earlier do not go on
// serving RPCs after Run has returned.
//
// A nil s or ln makes NewRunner and Serve fail.
//
// gRPC has no place of its own for [Draining]: a handler's context is made
// by gRPC, not by this package. The Server returned has one more method for
// that, which the interceptor of github.com/b583c413/lameduck/lameduckgrpc
// finds with a type assertion:
//
//	WithDraining(ctx context.Context, draining chan struct{}) context.Context
//
// It returns a copy of ctx for which Draining returns draining; whoever
// marks a stream's context with it closes draining when that stream's drain
// begins. Use that module rather than calling it yourself: it also decides
// when each stream is told, and ends the streams that do not listen.
func FromGRPC(s GRPCServer, ln net.Listener) Server {
	return &grpcServer{s: s, ln: ln}
}

type grpcServer struct {
	s    GRPCServer
	ln   net.Listener
	life lifecycle
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
	switch stopped, err := g.life.start("FromGRPC's Serve"); {
	case err != nil:
		return err
	case stopped:
		return nil // Shutdown or Close came first, and closed ln
	}

	err := g.s.Serve(g.ln)
	if g.life.stop(phaseStopping) >= phaseStopping {
		// gRPC returns nil after a stop, or grpc.ErrServerStopped when the
		// stop won the race with Serve's start; either way the server
		// stopped because it was asked to.
		return nil
	}
	// gRPC's Serve gives up only on its listener; connections it accepted
	// before that would go on serving. Nothing of this server may outlive
	// Run, and Run cannot be relied on to call Close after a Serve failure.
	g.s.Stop()
	return err
}

// stop moves the server on to p. A stop that comes before Serve closes ln,
// which Serve will now never use.
func (g *grpcServer) stop(p phase) {
	if g.life.stop(p) == phaseIdle {
		g.ln.Close()
	}
}

func (g *grpcServer) Shutdown(ctx context.Context) error {
	if err := g.validate(); err != nil {
		return err
	}
	g.stop(phaseStopping)
	graceful := make(chan struct{})
	go func() {
		// This goroutine may outlive Shutdown: after a Stop, GracefulStop
		// still waits for handlers that ignore their context.
		defer close(graceful)
		g.s.GracefulStop()
	}()
	select {
	case <-graceful:
		return nil
	case <-ctx.Done():
		// What is still running is Close's to end (Stop), as with any
		// Server: a Runner calls it next, once it has seen what held the
		// drain (its stop report counts the streams still open).
		return ctx.Err()
	}
}

func (g *grpcServer) Close() error {
	if err := g.validate(); err != nil {
		return err
	}
	g.stop(phaseClosed)
	g.s.Stop()
	return nil
}

// WithDraining returns a copy of ctx for which [Draining] returns draining;
// see [FromGRPC]. The caller owns draining and closes it.
func (g *grpcServer) WithDraining(ctx context.Context, draining chan struct{}) context.Context {
	return markDraining(ctx, draining)
}
