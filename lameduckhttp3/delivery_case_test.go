package lameduckhttp3

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// exchange is the case's request: what its handler wrote and what its
// client read. Each side sets its fields before it closes the channel that
// ends its part.
type exchange struct {
	c    deliveryCase
	body []byte

	calls    atomic.Int32  // handler calls; a second one (a client's retry) is refused
	entered  chan struct{} // the handler has begun
	half     chan struct{} // the handler has flushed half the body
	returned chan struct{} // the handler has returned
	writeErr error
}

func newExchange(c deliveryCase) *exchange {
	n := map[sizeKind]int{size0: 0, size1K: 1 << 10, size64K: 64 << 10, size1M: 1 << 20}[c.size]
	body := make([]byte, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], c.seed)
	rand.NewChaCha8(key).Read(body)
	return &exchange{c: c, body: body, entered: make(chan struct{}), half: make(chan struct{}), returned: make(chan struct{})}
}

// ServeHTTP answers /warm (the idle case's first request) with a word, and
// /main with the body, pausing where the case's moment says until the
// drain has begun.
func (x *exchange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/main" {
		io.WriteString(w, "warm")
		return
	}
	if x.calls.Add(1) > 1 {
		http.Error(w, "this exchange has been served", http.StatusConflict)
		return
	}
	close(x.entered)
	defer close(x.returned)
	draining := func() {
		select {
		case <-lameduck.Draining(r.Context()):
		case <-r.Context().Done():
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(x.body)))
	if x.c.stop == stopBeforeWrite {
		draining()
	}
	write := func(b []byte) bool {
		for len(b) > 0 {
			n := min(16<<10, len(b))
			if _, err := w.Write(b[:n]); err != nil {
				x.writeErr = err
				return false
			}
			b = b[n:]
		}
		return true
	}
	if x.c.stop != stopMidBody {
		write(x.body)
		return
	}
	half := len(x.body) / 2
	ok := write(x.body[:half])
	if ok {
		x.writeErr = http.NewResponseController(w).Flush()
	}
	close(x.half)
	if ok && x.writeErr == nil {
		draining()
		write(x.body[half:])
	}
}

// fetched is what the case's client got.
type fetched struct {
	status int
	body   []byte
	err    error
}

// deliveryClient is quic-go's client, with a small stream receive window
// when the case asks for one.
func deliveryClient(t *testing.T, c deliveryCase) *http.Client {
	_, pool := certs()
	qc := &quic.Config{HandshakeIdleTimeout: time.Second, MaxIdleTimeout: 5 * time.Second}
	if c.smallWindow {
		qc.InitialStreamReceiveWindow, qc.MaxStreamReceiveWindow = 64<<10, 64<<10
	}
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, QUICConfig: qc}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// fetch gets url and reads the body as the case's reader does: the staller
// reads nothing once triggered is closed, until drained is.
func fetch(cl *http.Client, url string, c deliveryCase, triggered, drained <-chan struct{}) fetched {
	resp, err := cl.Get(url)
	if err != nil {
		return fetched{err: err}
	}
	defer resp.Body.Close()
	f := fetched{status: resp.StatusCode}
	buf := make([]byte, 16<<10)
	start := time.Now()
	for {
		switch c.reader {
		case readSlow:
			// The reader's pace, not synchronisation: sleep until the
			// bytes read so far are due at the case's rate.
			time.Sleep(time.Until(start.Add(time.Duration(len(f.body)) * time.Second / time.Duration(c.rate))))
		case readStall:
			select {
			case <-triggered:
				<-drained
			default:
			}
		}
		n, err := resp.Body.Read(buf)
		f.body = append(f.body, buf[:n]...)
		if err == io.EOF {
			return f
		}
		if err != nil {
			f.err = err
			return f
		}
	}
}

// deliveryOutcome is how a case ended.
type deliveryOutcome struct {
	runNil, expired bool
	served          bool   // the request reached its handler
	whole           bool   // its client read the whole body
	staller         bool   // the case's reader stalls
	silentCut       string // set when Run returned nil but the response was not whole
	uncounted       string // set when the response was not whole but the stop report counts no cut
}

func (o deliveryOutcome) kinds() []string {
	var k []string
	switch {
	case o.runNil:
		k = append(k, "Run nil")
	case o.expired:
		k = append(k, "Run expired")
		if !o.staller {
			k = append(k, "expired without a staller")
		}
	default:
		k = append(k, "Run failed (the drain reported a cut)")
	}
	switch {
	case !o.served:
		k = append(k, "refused")
	case o.whole:
		k = append(k, "whole")
	default:
		k = append(k, "cut")
	}
	if o.silentCut != "" {
		k = append(k, "silent cut")
	}
	if o.uncounted != "" {
		k = append(k, "uncounted cut")
	}
	return k
}

// runDeliveryCase runs one case on a server and a client of its own.
func runDeliveryCase(t *testing.T, c deliveryCase) deliveryOutcome {
	x := newExchange(c)
	run := serve(t, x, deliveryPeriod)
	cl := deliveryClient(t, c)
	url := "https://" + run.addr + "/main"
	if c.stop == stopIdle {
		resp, err := cl.Get("https://" + run.addr + "/warm")
		if err != nil {
			t.Fatalf("the first request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	triggered, drained := make(chan struct{}), make(chan struct{})
	got := make(chan fetched, 1)
	send := func() { go func() { got <- fetch(cl, url, c, triggered, drained) }() }
	if c.stop != stopIdle {
		send()
		ready := map[stopMoment]chan struct{}{stopBeforeWrite: x.entered, stopMidBody: x.half, stopAfterReturn: x.returned}[c.stop]
		select {
		case <-ready:
		case f := <-got:
			t.Fatalf("the request ended before the drain began: status %d, %d bytes, %v", f.status, len(f.body), f.err)
		}
	}
	run.trigger()
	close(triggered)
	if c.stop == stopIdle {
		send()
	}
	err := run.wait()
	close(drained)
	f := <-got

	var lde *lameduck.LameDuckError
	out := deliveryOutcome{runNil: err == nil, expired: errors.As(err, &lde) && lde.Expired, staller: c.reader == readStall}
	select {
	case <-x.entered:
		out.served = true
		<-x.returned // it writes nothing more once Run has returned
	default:
	}
	out.whole = f.err == nil && f.status == http.StatusOK && bytes.Equal(f.body, x.body)
	if out.runNil && out.served && (!out.whole || x.writeErr != nil) {
		out.silentCut = fmt.Sprintf("the client read %d of %d bytes (status %d, %v; the handler's write: %v)", len(f.body), len(x.body), f.status, f.err, x.writeErr)
	}
	// The stop report errs toward a cut, never toward a silent loss.
	if out.served && !out.whole {
		if req, conn := run.work(t, "requests"), run.work(t, "connections"); req.Cut+conn.Cut == 0 {
			out.uncounted = fmt.Sprintf("the client read %d of %d bytes (%v), but the stop report counts no cut: %+v, %+v", len(f.body), len(x.body), f.err, req, conn)
		}
	}
	return out
}
