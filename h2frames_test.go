package lameduck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HTTP/2 frame types this file reads or writes (RFC 9113, section 6).
const (
	h2Data       = 0x0
	h2Settings   = 0x4
	h2Ping       = 0x6
	h2GoAway     = 0x7
	h2WindowUpd  = 0x8
	h2FlagAck    = 0x1
	h2ClientPref = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// TestFromHTTPGoAway checks rule 15's "sends HTTP/2 GOAWAY before a
// connection goes": a raw HTTP/2 client on an idle connection must read a
// GOAWAY frame before the connection is closed, over TLS and over h2c. Half
// the rounds trigger the drain as soon as the connection is set up, half
// once it has been idle a while, as a client's pooled connection is.
func TestFromHTTPGoAway(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, useTLS := range []bool{true, false} {
		name := "h2c"
		if useTLS {
			name = "h2-tls"
		}
		t.Run(name, func(t *testing.T) {
			const rounds = 20
			var missed atomic.Int32
			var wg sync.WaitGroup
			for i := range rounds {
				idle := time.Duration(i%2) * 250 * time.Millisecond
				wg.Go(func() {
					t.Run(fmt.Sprintf("round %d idle %v", i, idle), func(t *testing.T) {
						if frames, ok := goAwayRound(t, useTLS, idle, cert, pool); !ok {
							missed.Add(1)
							t.Errorf("%s, idle %v: the connection was closed after frames %v, without a GOAWAY", name, idle, frames)
						}
					})
				})
			}
			wg.Wait()
			if n := missed.Load(); n > 0 {
				t.Errorf("%s: %d of %d idle connections closed without GOAWAY, want 0", name, n, rounds)
			}
		})
	}
}

// goAwayRound serves one idle HTTP/2 connection, triggers lame-duck mode and
// reports the frames the client read after the trigger and whether a GOAWAY
// came before the end of the connection.
func goAwayRound(t *testing.T, useTLS bool, idle time.Duration, cert tls.Certificate, pool *x509.CertPool) (frames []string, ok bool) {
	t.Helper()
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()}
	if useTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	svr, addr := serverUnderTest(t, srv)
	r, err := NewRunner(svr, Period(deliveryPeriod), Signals(), WithoutLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	<-r.Ready()

	conn, err := net.Dial("tcp", addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if useTLS {
		tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN chose %q, want h2", p)
		}
		conn = tc
	}
	defer conn.Close()
	// A bound for a broken server, not a wait for anything.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	h2 := &rawH2{conn: conn}
	h2.write(t, []byte(h2ClientPref))
	h2.frame(t, h2Settings, 0, nil)

	// The connection is set up (and idle) once the server's SETTINGS has
	// come and it has acknowledged ours.
	for gotSettings, gotAck := false, false; !gotSettings || !gotAck; {
		typ, flags, payload, err := h2.read()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		switch {
		case typ == h2Settings && flags&h2FlagAck != 0:
			gotAck = true
		case typ == h2Settings:
			gotSettings = true
			h2.frame(t, h2Settings, h2FlagAck, nil)
		case typ == h2Ping && flags&h2FlagAck == 0:
			h2.frame(t, h2Ping, h2FlagAck, payload)
		}
	}

	time.Sleep(idle) // how long the client leaves the connection idle
	cancel()
	for {
		typ, flags, payload, err := h2.read()
		if err != nil {
			frames = append(frames, fmt.Sprintf("end (%v)", err))
			break
		}
		frames = append(frames, h2FrameName(typ, flags))
		if typ == h2GoAway {
			ok = true
			break
		}
		if typ == h2Ping && flags&h2FlagAck == 0 {
			h2.frame(t, h2Ping, h2FlagAck, payload)
		}
	}
	// A client that has read GOAWAY on an idle connection closes it.
	conn.Close()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	return frames, ok
}

// rawH2 reads and writes HTTP/2 frames on a connection, nothing more.
type rawH2 struct {
	conn net.Conn
}

func (h *rawH2) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := h.conn.Write(b); err != nil {
		t.Fatalf("writing to the server: %v", err)
	}
}

// frame writes a frame on stream 0.
func (h *rawH2) frame(t *testing.T, typ, flags byte, payload []byte) {
	t.Helper()
	hdr := make([]byte, 9, 9+len(payload))
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	h.write(t, append(hdr, payload...))
}

// read reads one frame: its 9-byte header (24-bit length, type, flags,
// stream), then its payload.
func (h *rawH2) read() (typ, flags byte, payload []byte, err error) {
	var hdr [9]byte
	if _, err := io.ReadFull(h.conn, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := uint32(hdr[0])<<16 | uint32(binary.BigEndian.Uint16(hdr[1:3]))
	payload = make([]byte, n)
	if _, err := io.ReadFull(h.conn, payload); err != nil {
		return 0, 0, nil, err
	}
	return hdr[3], hdr[4], payload, nil
}

func h2FrameName(typ, flags byte) string {
	name := map[byte]string{h2Data: "DATA", h2Settings: "SETTINGS", h2Ping: "PING", h2GoAway: "GOAWAY", h2WindowUpd: "WINDOW_UPDATE"}[typ]
	if name == "" {
		name = fmt.Sprintf("type %#x", typ)
	}
	if flags&h2FlagAck != 0 && (typ == h2Settings || typ == h2Ping) {
		name += "+ACK"
	}
	return name
}
