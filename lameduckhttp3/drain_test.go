package lameduckhttp3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// held is a handler for the requests to /held: it says it has begun on
// entered and writes body once release is closed. Other paths get "late".
type held struct {
	entered chan struct{}
	release chan struct{}
	body    []byte
}

func newHeld(body []byte) *held {
	return &held{entered: make(chan struct{}, 1), release: make(chan struct{}), body: body}
}

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/held" {
		io.WriteString(w, "late")
		return
	}
	h.entered <- struct{}{}
	<-h.release
	w.Write(h.body)
}

// The drain sends GOAWAY with the ID of the first stream it will not
// serve, refuses a stream opened after it with H3_REQUEST_REJECTED, lets
// the request in flight finish whole, and closes, with H3_NO_ERROR, the
// connection of a client that keeps it open once its streams are done.
// Since it cannot know that client had read its response, the connection
// counts as cut, and Run does not return nil.
func TestDrainClosesAConnectionItsClientKeeps(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	h := newHeld(body)
	run := serve(t, h, 10*time.Second)
	c := dialRaw(t, run.addr)
	str, err := c.get("/held")
	if err != nil {
		t.Fatal(err)
	}
	<-h.entered
	run.trigger()

	if id := <-c.goaway; id != 4 {
		t.Errorf("GOAWAY carries stream ID %d, want 4 (stream 0 is served, 4 and up are not)", id)
	}
	late, err := c.get("/late") // a request that crossed the GOAWAY
	if err != nil {
		t.Fatal(err)
	}
	_, err = readBody(late)
	var serr *quic.StreamError
	if !errors.As(err, &serr) || serr.ErrorCode != quic.StreamErrorCode(http3.ErrCodeRequestRejected) {
		t.Errorf("a stream opened after the GOAWAY got %v, want H3_REQUEST_REJECTED", err)
	}

	close(h.release)
	got, err := readBody(str)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("the request in flight got %d bytes and %v, want %d bytes and nil", len(got), err, len(body))
	}

	<-c.qc.Context().Done()
	var aerr *quic.ApplicationError
	if cause := context.Cause(c.qc.Context()); !errors.As(cause, &aerr) || !aerr.Remote || aerr.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeNoError) {
		t.Errorf("the connection ended with %v, want the server's H3_NO_ERROR", cause)
	}
	err = run.wait()
	var lde *lameduck.LameDuckError
	if !errors.As(err, &lde) || lde.Expired || !strings.Contains(err.Error(), "1 connections that carried responses were closed by the server") {
		t.Errorf("Run = %v, want a LameDuckError, not expired, that says the drain closed a connection that carried a response", err)
	}
	if w := run.work(t, "requests"); w.Finished != 1 || w.Cut != 0 {
		t.Errorf("requests row %+v, want 1 finished, none cut (the refused one never reached a handler)", w)
	}
	if w := run.work(t, "connections"); w.Cut != 1 || w.InFlight != 0 {
		t.Errorf("connections row %+v, want 1 cut, none open", w)
	}
	// The stop report's line, which the Runner logs last, tells the cut
	// connection too.
	if line := run.r.Report().String(); !strings.Contains(line, "1 finished, 0 cut, 1 connection cut") {
		t.Errorf("the stop report's line %q does not tell the connection the drain cut", line)
	}
}

// With quic-go's own client, which closes its connection once it has a
// GOAWAY and has read every response, the drain ends as soon as it has,
// and Run returns nil.
func TestCleanDrainWithQuicGoClient(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1<<20)
	h := newHeld(body)
	run := serve(t, h, 10*time.Second)
	got := make(chan error, 1)
	go func() {
		resp, err := client(t).Get("https://" + run.addr + "/held")
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && !bytes.Equal(b, body) {
				err = errors.New("the body differs")
			}
		}
		got <- err
	}()
	<-h.entered
	run.trigger()
	close(h.release)
	if err := run.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if err := <-got; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	if w := run.work(t, "requests"); w.AtLameDuck != 1 || w.Finished != 1 || w.Cut != 0 {
		t.Errorf("requests row %+v, want 1 at lame-duck, 1 finished, none cut", w)
	}
	if w := run.work(t, "connections"); w.Finished != 1 || w.Cut != 0 {
		t.Errorf("connections row %+v, want 1 finished, none cut", w)
	}
}

// A connection that never carried a request is closed once its GOAWAY has
// had time to arrive, even when its client keeps it: nothing can be lost
// on it, so Run returns nil.
func TestDrainClosesAnUnusedConnection(t *testing.T) {
	run := serve(t, http.NotFoundHandler(), 10*time.Second)
	c := dialRaw(t, run.addr)
	run.trigger()
	if id := <-c.goaway; id != 0 {
		t.Errorf("GOAWAY carries stream ID %d, want 0", id)
	}
	<-c.qc.Context().Done()
	var aerr *quic.ApplicationError
	if cause := context.Cause(c.qc.Context()); !errors.As(cause, &aerr) || !aerr.Remote || aerr.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeNoError) {
		t.Errorf("the connection ended with %v, want the server's H3_NO_ERROR", cause)
	}
	if err := run.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if w := run.work(t, "connections"); w.AtLameDuck != 1 || w.Finished != 1 || w.Cut != 0 {
		t.Errorf("connections row %+v, want 1 at lame-duck, 1 finished, none cut", w)
	}
}

// A handler that never returns holds the drain to the end of the period;
// Close then cuts it (its client gets H3_REQUEST_CANCELLED), and Run
// returns an expired LameDuckError, with the request counted cut.
func TestPeriodBoundsAHandlerThatNeverReturns(t *testing.T) {
	h := newHeld(nil)
	returned := make(chan struct{})
	run := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		h.ServeHTTP(w, r) // ignores its context
	}), 300*time.Millisecond)
	c := dialRaw(t, run.addr)
	str, err := c.get("/held")
	if err != nil {
		t.Fatal(err)
	}
	<-h.entered
	err = run.stop()
	var lde *lameduck.LameDuckError
	if !errors.As(err, &lde) || !lde.Expired {
		t.Errorf("Run = %v, want an expired LameDuckError", err)
	}
	if _, err := readBody(str); err == nil {
		t.Error("the cut request's body ended cleanly")
	}
	<-c.qc.Context().Done()
	var aerr *quic.ApplicationError
	if cause := context.Cause(c.qc.Context()); !errors.As(cause, &aerr) || aerr.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeRequestCanceled) {
		t.Errorf("the connection ended with %v, want the server's H3_REQUEST_CANCELLED", cause)
	}
	if w := run.work(t, "requests"); w.Held != 1 || w.Cut != 1 || w.Finished != 0 {
		t.Errorf("requests row %+v, want 1 held and cut", w)
	}
	if w := run.work(t, "connections"); w.Cut != 1 {
		t.Errorf("connections row %+v, want 1 cut", w)
	}
	close(h.release)
	<-returned
}

// A handler that watches lameduck.Draining ends its response when the
// drain begins, and the drain ends with it.
func TestDrainingClosesForHTTP3Requests(t *testing.T) {
	entered := make(chan struct{})
	run := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-lameduck.Draining(r.Context()):
			io.WriteString(w, "bye")
		case <-r.Context().Done():
		}
	}), 10*time.Second)
	got := make(chan string, 1)
	go func() {
		resp, err := client(t).Get("https://" + run.addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(b)
	}()
	<-entered
	if err := run.stop(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if s := <-got; s != "bye" {
		t.Errorf("the client got %q, want %q", s, "bye")
	}
}
