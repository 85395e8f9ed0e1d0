package lameduck

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HTTP/2 frame types and flags this file uses besides h2frames_test.go's.
const (
	h2Headers      = 0x1
	h2FlagEndStrm  = 0x1
	h2FlagEndHeads = 0x4
)

// An HTTP/2 connection that the server starts serving only after net/http's
// GOAWAY sweep (its TLS handshake, or its h2c preface, comes in just as the
// drain begins) must still get a GOAWAY (rule 15), or its client keeps it
// open and the drain runs into the period. The test makes that order
// certain: an early connection with a request in flight keeps the drain
// going, and the late connection's first bytes are held back until the
// early one has read its GOAWAY, which the sweep sends. The late client then
// hangs up on its GOAWAY, as clients do, and Run must return nil, having
// run the user's RegisterOnShutdown hook exactly once.
func TestFromHTTPGoAwayAfterSweep(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name   string
		useTLS bool
	}{
		{"h2-tls", true},
		{"h2c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entered, release := make(chan struct{}, 1), make(chan struct{})
			var releaseOnce sync.Once
			defer releaseOnce.Do(func() { close(release) }) // a handler left waiting by a failure
			accepted := make(chan struct{}, 2)
			var hookCalls atomic.Int32
			hooked := make(chan struct{}, 1)
			srv := &http.Server{
				Addr: "127.0.0.1:0",
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					entered <- struct{}{}
					<-release
				}),
				ConnState: func(_ net.Conn, st http.ConnState) {
					if st == http.StateNew {
						accepted <- struct{}{}
					}
				},
			}
			srv.RegisterOnShutdown(func() {
				if hookCalls.Add(1) == 1 {
					hooked <- struct{}{}
				}
			})
			if tc.useTLS {
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			} else {
				srv.Protocols = new(http.Protocols)
				srv.Protocols.SetHTTP1(true)
				srv.Protocols.SetUnencryptedHTTP2(true)
			}
			hs := FromHTTP(srv)
			// The period only bounds a failing run: a passing one returns
			// as soon as the late client has hung up.
			h := runUntilReady(t, hs, Period(10*time.Second), Signals())
			addr := hs.Addr().String()
			clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}

			// The early connection: set up, with a request in flight.
			early := dialH2(t, addr, tc.useTLS, clientTLS)
			defer early.conn.Close()
			<-accepted
			early.setUp(t)
			early.request(t, 1, "/hold", tc.useTLS)
			<-entered

			// The late connection: accepted by the server, but the client
			// has not sent its first byte (the ClientHello, or the h2c
			// preface) yet.
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			var handshaking sync.WaitGroup
			defer handshaking.Wait()
			defer raw.Close()
			hold := make(chan struct{})
			var holdOnce sync.Once
			unhold := func() { holdOnce.Do(func() { close(hold) }) }
			defer unhold()
			<-accepted
			late := &h2Conn{conn: &heldConn{Conn: raw, hold: hold}}
			var handshakeErr error
			if tc.useTLS {
				tlsConn := tls.Client(late.conn, clientTLS)
				late.conn = tlsConn
				handshaking.Go(func() { handshakeErr = tlsConn.Handshake() })
			}

			h.cancel()
			if !early.readUntil(func() bool { return early.goAway }) {
				t.Fatalf("early connection: ended (%v) after frames %v, want a GOAWAY", early.end, early.frames)
			}
			// The sweep has run; only now does the late connection begin.
			unhold()
			if tc.useTLS {
				handshaking.Wait()
				if handshakeErr != nil {
					t.Fatalf("late TLS handshake: %v", handshakeErr)
				}
				if p := late.conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
					t.Fatalf("late connection: ALPN chose %q, want h2", p)
				}
			}
			late.setUp(t)

			releaseOnce.Do(func() { close(release) })
			if !early.readUntil(func() bool { return early.ended }) {
				t.Errorf("early connection: ended (%v) after frames %v, want the whole response", early.end, early.frames)
			}
			early.conn.Close()

			// A client hangs up on a GOAWAY when no stream of its own is
			// open; without one, it keeps the connection until the server
			// closes it.
			if !late.readUntil(func() bool { return late.goAway }) {
				t.Errorf("late connection: ended (%v) after frames %v, want a GOAWAY", late.end, late.frames)
			}
			late.conn.Close()

			if err := <-h.done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			<-hooked // net/http runs the hooks on goroutines of their own
			if n := hookCalls.Load(); n != 1 {
				t.Errorf("the RegisterOnShutdown hook ran %d times, want 1", n)
			}
		})
	}
}

// heldConn holds every write back until hold is closed.
type heldConn struct {
	net.Conn
	hold <-chan struct{}
}

func (c *heldConn) Write(p []byte) (int, error) {
	<-c.hold
	return c.Conn.Write(p)
}

// h2Conn is a raw HTTP/2 client connection that notes what it has read.
type h2Conn struct {
	conn     net.Conn
	frames   []string // the frames read, by name
	settings bool     // the server's SETTINGS came (and was acknowledged)
	acked    bool     // the server acknowledged ours
	goAway   bool     // a GOAWAY came
	ended    bool     // a response came to its end
	end      error    // why reading stopped, once it has
}

// dialH2 connects to addr, over TLS (handshake done, h2 chosen) or not.
func dialH2(t *testing.T, addr string, useTLS bool, cfg *tls.Config) *h2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			c.Close()
			t.Fatal(err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			c.Close()
			t.Fatalf("ALPN chose %q, want h2", p)
		}
		c = tc
	}
	return &h2Conn{conn: c}
}

// setUp sends the preface and SETTINGS and reads until the server's
// SETTINGS and its acknowledgement of ours have come.
func (c *h2Conn) setUp(t *testing.T) {
	t.Helper()
	// A bound for a broken server, not a wait for anything.
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	raw := &rawH2{conn: c.conn}
	raw.write(t, []byte(h2ClientPref))
	raw.frame(t, h2Settings, 0, nil)
	if !c.readUntil(func() bool { return c.settings && c.acked }) {
		t.Fatalf("setting up: the connection ended (%v) after frames %v", c.end, c.frames)
	}
}

// request opens stream id with a GET of path: a HEADERS frame whose header
// block is HPACK without Huffman coding or indexing.
func (c *h2Conn) request(t *testing.T, id uint32, path string, useTLS bool) {
	t.Helper()
	scheme := byte(0x86) // :scheme http, from the static table
	if useTLS {
		scheme = 0x87 // :scheme https
	}
	block := []byte{0x82, scheme} // :method GET
	block = append(block, 0x04, byte(len(path)))
	block = append(block, path...) // :path, a literal value
	const authority = "127.0.0.1"
	block = append(block, 0x01, byte(len(authority)))
	block = append(block, authority...) // :authority, a literal value
	hdr := []byte{0, 0, byte(len(block)), h2Headers, h2FlagEndStrm | h2FlagEndHeads,
		byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	(&rawH2{conn: c.conn}).write(t, append(hdr, block...))
}

// readUntil reads frames, acknowledging the server's SETTINGS and PINGs,
// until done reports true, and reports whether it does before the
// connection ends (c.end then says how it ended).
func (c *h2Conn) readUntil(done func() bool) bool {
	for !done() {
		if c.end != nil {
			return false
		}
		typ, flags, payload, err := (&rawH2{conn: c.conn}).read()
		if err != nil {
			c.end = err
			continue
		}
		c.frames = append(c.frames, h2FrameName(typ, flags))
		switch {
		case typ == h2Settings && flags&h2FlagAck != 0:
			c.acked = true
		case typ == h2Settings:
			c.settings = true
			c.reply(h2Settings, h2FlagAck, nil)
		case typ == h2Ping && flags&h2FlagAck == 0:
			c.reply(h2Ping, h2FlagAck, payload)
		case typ == h2GoAway:
			c.goAway = true
		case (typ == h2Headers || typ == h2Data) && flags&h2FlagEndStrm != 0:
			c.ended = true
		}
	}
	return true
}

// reply writes a frame on stream 0; a failure shows as the connection's
// end at the next read.
func (c *h2Conn) reply(typ, flags byte, payload []byte) {
	hdr := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, flags, 0, 0, 0, 0}
	c.conn.Write(append(hdr, payload...))
}
