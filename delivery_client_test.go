package lameduck

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// socketBuffer is the size of the slow and stalling clients' receive buffers
// and, when the case says so, of the server's send buffer: small, so that
// what the client has not read backs up into the server. The slow reader's
// are no smaller than loopback's 64 KiB segments, below which TCP's
// silly-window avoidance stalls the transfer for a persist timeout.
func (c deliveryCase) socketBuffer() int {
	if c.reader == readStall {
		return 16 << 10
	}
	return 64 << 10
}

// deliveryClient is the client side of one case.
type deliveryClient struct {
	c         deliveryCase
	transport *http.Transport
	stalled   atomic.Bool   // the staller's connections read nothing more
	release   chan struct{} // ... until this is closed
	unstall   func()        // closes release
}

// stall makes the staller stop reading, from the trigger on: before it, it
// reads as fast as it can, so that every stop moment can be reached.
func (cl *deliveryClient) stall() {
	if cl.c.reader == readStall {
		cl.stalled.Store(true)
	}
}

func newDeliveryClient(env deliveryEnv, c deliveryCase) *deliveryClient {
	cl := &deliveryClient{c: c, release: make(chan struct{})}
	cl.unstall = sync.OnceFunc(func() { close(cl.release) })
	tr := &http.Transport{DisableCompression: true, Protocols: new(http.Protocols)}
	dialTLS := func(alpn ...string) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := cl.dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, &tls.Config{RootCAs: env.pool, ServerName: "127.0.0.1", NextProtos: alpn})
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	switch c.proto {
	case wireHTTP1:
		tr.Protocols.SetHTTP1(true)
		tr.DialContext = cl.dial
	case wireHTTP1TLS:
		tr.Protocols.SetHTTP1(true)
		tr.DialTLSContext = dialTLS("http/1.1")
	case wireH2TLS:
		tr.Protocols.SetHTTP2(true)
		tr.DialTLSContext = dialTLS("h2")
	case wireH2C:
		tr.Protocols.SetUnencryptedHTTP2(true)
		tr.DialContext = cl.dial
	}
	cl.transport = tr
	return cl
}

// dial connects, and throttles the connection at the socket for the slow
// and stalling readers.
func (cl *deliveryClient) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	switch cl.c.reader {
	case readSlowSocket:
		conn.(*net.TCPConn).SetReadBuffer(cl.c.socketBuffer())
		return &throttledConn{Conn: conn, rate: cl.c.rate, start: time.Now()}, nil
	case readStall:
		conn.(*net.TCPConn).SetReadBuffer(cl.c.socketBuffer())
		return &throttledConn{Conn: conn, stalled: &cl.stalled, release: cl.release}, nil
	}
	return conn, nil
}

// fetch GETs url and records in x what arrived. The request of the case
// (main) is read the case's way; the warm-up is read at once.
func (cl *deliveryClient) fetch(url string, x *exchange, main bool) {
	defer close(x.done)
	resp, err := (&http.Client{Transport: cl.transport}).Get(url)
	if err != nil {
		x.readErr = err
		return
	}
	defer resp.Body.Close()
	x.proto = resp.Proto
	buf := make([]byte, 4<<10)
	start := time.Now()
	for {
		n, err := resp.Body.Read(buf)
		x.read += n
		if main && cl.c.reader == readSlowApp {
			time.Sleep(time.Until(start.Add(time.Duration(x.read) * time.Second / time.Duration(cl.c.rate))))
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			x.readErr = err
			return
		}
	}
}

// throttledConn reads at most rate bytes a second (0: as fast as it can),
// and nothing while stalled is set, until release is closed.
type throttledConn struct {
	net.Conn
	rate    int
	stalled *atomic.Bool
	release <-chan struct{}

	mu    sync.Mutex
	start time.Time
	read  int
}

func (c *throttledConn) Read(p []byte) (int, error) {
	if c.stalled != nil && c.stalled.Load() {
		<-c.release
	}
	if c.rate == 0 {
		return c.Conn.Read(p)
	}
	if len(p) > 4<<10 {
		p = p[:4<<10]
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += n
	due := c.start.Add(time.Duration(c.read) * time.Second / time.Duration(c.rate))
	c.mu.Unlock()
	time.Sleep(time.Until(due))
	return n, err
}
