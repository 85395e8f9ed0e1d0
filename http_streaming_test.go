package lameduck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A streaming handler that watches Draining ends its response when the
// drain begins: the client gets every event and a clean end, and Run returns
// nil long before the hour-long period.
func TestDrainingEndsStreams(t *testing.T) {
	if Draining(context.Background()) != nil {
		t.Error("Draining of a context not from an HTTPServer is not nil")
	}
	streaming := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		close(streaming)
		<-Draining(r.Context())
		fmt.Fprint(w, "data: bye\n\n")
	})
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	h := runUntilReady(t, hs, Period(time.Hour))

	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + hs.Addr().String() + "/events")
		if err != nil {
			body <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			b = append(b, " / "+err.Error()...)
		}
		body <- string(b)
	}()
	<-streaming
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if got, want := <-body, "data: hello\n\ndata: bye\n\n"; got != want {
		t.Errorf("the client read %q, want %q", got, want)
	}
}

// x/net's h2c handler serves a whole HTTP/2 connection inside one handler
// call, which the drain cannot end: FromHTTP says so in the server's error
// log, and the stop runs to the period as the docs promise.
func TestFromHTTPWarnsOfH2CHandler(t *testing.T) {
	var logged syncBuffer
	served := make(chan struct{})
	srv := &http.Server{
		Addr:     "127.0.0.1:0",
		ErrorLog: log.New(&logged, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != "PRI" {
				return
			}
			// As h2c.NewHandler does: take the connection and serve it
			// until the client goes away.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			close(served)
			io.Copy(io.Discard, conn)
		}),
	}
	hs := FromHTTP(srv)
	h := runUntilReady(t, hs, Period(50*time.Millisecond))
	c, err := net.Dial("tcp", hs.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	<-served
	sendSignal(h)
	err = <-h.done
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want an expired LameDuckError", err)
	}
	if got := logged.String(); !strings.Contains(got, "h2c") || !strings.Contains(got, "SetUnencryptedHTTP2") {
		t.Errorf("the error log says %q, want a warning naming h2c and what to use instead", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
