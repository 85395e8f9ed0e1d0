package lameduckgrpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
)

// Bad input gives an error starting "lameduck: ", from New, from
// lameduck.NewRunner or from Run, never a panic or a hang.
func TestBadInput(t *testing.T) {
	runErr := func(svr lameduck.Server) error {
		r, err := lameduck.NewRunner(svr, lameduck.Signals(), lameduck.WithoutLogger())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r.Run(ctx)
	}
	newErr := func(opts ...Option) func() error {
		return func() error { _, err := New(opts...); return err }
	}
	linked := func() *Streams {
		s, _ := New()
		s.FromGRPC(nopGRPC{}, nopListener{})
		return s
	}
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"a negative Grace", newErr(Grace(-time.Second)), "lameduck: lameduckgrpc.Grace: negative duration -1s"},
		{"a negative Spread window", newErr(Spread(-time.Millisecond)), "lameduck: lameduckgrpc.Spread: negative window -1ms"},
		{"a nil option", newErr(Grace(time.Second), nil), "lameduck: lameduckgrpc.New: option 1 is nil"},
		{"FromGRPC of a nil *Streams", func() error { return runErr((*Streams)(nil).FromGRPC(nopGRPC{}, nopListener{})) }, "lameduck: lameduckgrpc: Streams not made by New"},
		{"FromGRPC of a zero Streams", func() error { return runErr(new(Streams).FromGRPC(nopGRPC{}, nopListener{})) }, "lameduck: lameduckgrpc: Streams not made by New"},
		{"FromGRPC called twice", func() error { return runErr(linked().FromGRPC(nopGRPC{}, nopListener{})) }, "lameduck: lameduckgrpc: Streams.FromGRPC called more than once"},
		{"a nil gRPC server", func() error { s, _ := New(); return runErr(s.FromGRPC(nil, nopListener{})) }, "lameduck: FromGRPC: nil GRPCServer"},
		{"a nil *grpc.Server", func() error { s, _ := New(); return runErr(s.FromGRPC((*grpc.Server)(nil), nopListener{})) }, "lameduck: FromGRPC: nil GRPCServer"},
		{"a nil listener", func() error { s, _ := New(); return runErr(s.FromGRPC(nopGRPC{}, nil)) }, "lameduck: FromGRPC: nil net.Listener"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("got %v, want an error starting %q", err, c.want)
			}
		})
	}
}

// The interceptors of a nil or zero Streams pass every call through, and
// Counts of one is zero.
func TestUnusableStreamsPassThrough(t *testing.T) {
	for _, s := range []*Streams{nil, new(Streams)} {
		called := false
		err := s.StreamInterceptor(nil, &fakeStream{ctx: context.Background()}, nil, func(any, grpc.ServerStream) error { called = true; return nil })
		if err != nil || !called {
			t.Errorf("%#v: StreamInterceptor returned %v, called the handler %v; want nil, true", s, err, called)
		}
		called = false
		_, err = s.UnaryInterceptor(context.Background(), nil, nil, func(context.Context, any) (any, error) { called = true; return nil, nil })
		if err != nil || !called {
			t.Errorf("%#v: UnaryInterceptor returned %v, called the handler %v; want nil, true", s, err, called)
		}
		if c := s.Counts(); c != (Counts{}) {
			t.Errorf("%#v: Counts = %+v, want zero", s, c)
		}
	}
}
