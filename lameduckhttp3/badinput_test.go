package lameduckhttp3

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go/http3"
)

// Bad input gives an error starting "lameduck: " from Run, never a panic or
// a hang.
func TestBadInput(t *testing.T) {
	cert, _ := certs()
	withTLS := func() *http3.Server {
		return &http3.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	}
	shutDown := func() *http3.Server {
		srv := withTLS()
		srv.Shutdown(context.Background())
		return srv
	}
	for _, c := range []struct {
		name string
		srv  func() *http3.Server
		pc   func(t *testing.T) net.PacketConn
		want string
	}{
		{"a nil server", func() *http3.Server { return nil }, udp, "lameduck: lameduckhttp3.FromHTTP3: nil *http3.Server"},
		{"a nil socket", withTLS, func(*testing.T) net.PacketConn { return nil }, "lameduck: lameduckhttp3.FromHTTP3: nil net.PacketConn"},
		{"a nil *net.UDPConn", withTLS, func(*testing.T) net.PacketConn { return (*net.UDPConn)(nil) }, "lameduck: lameduckhttp3.FromHTTP3: nil net.PacketConn"},
		{"a server without TLSConfig", func() *http3.Server { return &http3.Server{} }, udp, "lameduck: lameduckhttp3.FromHTTP3: the *http3.Server has no TLSConfig"},
		{"a server shut down already", shutDown, udp, "lameduck: lameduckhttp3: the *http3.Server was shut down or closed before Serve"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := runOnce(t, FromHTTP3(c.srv(), c.pc(t)))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("got %v, want an error starting %q", err, c.want)
			}
		})
	}
}

// Serve called twice fails the second time, and does not disturb the first.
func TestServeTwice(t *testing.T) {
	cert, _ := certs()
	svr := FromHTTP3(&http3.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, udp(t))
	served := make(chan error, 2)
	for range 2 {
		go func() { served <- svr.Serve(context.Background()) }()
	}
	if err, want := <-served, "lameduck: lameduckhttp3: Serve called more than once"; err == nil || err.Error() != want {
		t.Errorf("the Serve that came second returned %v, want %q", err, want)
	}
	if err := svr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; err != nil {
		t.Errorf("the Serve that came first returned %v, want nil", err)
	}
}

// A stop before Serve means Serve does not serve: it returns nil, and the
// socket is closed.
func TestStopBeforeServe(t *testing.T) {
	cert, _ := certs()
	for _, stop := range []string{"Shutdown", "Close"} {
		t.Run(stop, func(t *testing.T) {
			pc := udp(t)
			svr := FromHTTP3(&http3.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, pc)
			var err error
			if stop == "Shutdown" {
				err = svr.Shutdown(context.Background())
			} else {
				err = svr.Close()
			}
			if err != nil {
				t.Errorf("%s = %v, want nil", stop, err)
			}
			if err := svr.Serve(context.Background()); err != nil {
				t.Errorf("Serve after %s = %v, want nil", stop, err)
			}
			if _, err := pc.WriteTo([]byte{0}, pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("writing to the socket after %s: %v, want net.ErrClosed", stop, err)
			}
		})
	}
}

// udp is a UDP socket on a loopback port, closed when the test ends.
func udp(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// runOnce runs svr under a Runner, which bad input makes return at once;
// after 10 s it begins lame-duck mode.
func runOnce(t *testing.T, svr lameduck.Server) error {
	r, err := lameduck.NewRunner(svr, lameduck.Signals(), lameduck.WithoutLogger(), lameduck.Period(time.Second))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.Run(ctx)
}

// Shutdown after Close has nothing left to drain: it returns nil at once,
// and so does Serve.
func TestShutdownAfterClose(t *testing.T) {
	cert, _ := certs()
	svr := FromHTTP3(&http3.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, udp(t))
	served := make(chan error, 1)
	go func() { served <- svr.Serve(context.Background()) }()
	if err := svr.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
	if err := svr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close = %v, want nil", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}
