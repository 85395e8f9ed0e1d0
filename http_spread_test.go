package lameduck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Under Spread, Draining is the connection's own channel, which its
// requests share; without it, the server's, which every request shares.
func TestSpreadChannelPerConnection(t *testing.T) {
	for _, window := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("a window of %v", window), func(t *testing.T) {
			var mu sync.Mutex
			var seen []<-chan struct{}
			hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, Draining(r.Context()))
				mu.Unlock()
			})}).Spread(window)
			h := runUntilReady(t, hs, Period(5*time.Second))
			url := "http://" + hs.Addr().String()
			one, other := &http.Client{Transport: &http.Transport{}}, &http.Client{Transport: &http.Transport{}}
			defer one.CloseIdleConnections()
			defer other.CloseIdleConnections()
			for _, c := range []*http.Client{one, one, other} { // two requests on one connection, one on another
				if code, _, err := get(c, url); err != nil || code != 200 {
					t.Fatalf("GET = %d, %v", code, err)
				}
			}
			sendSignal(h)
			if err := <-h.done; err != nil {
				t.Errorf("Run = %v", err)
			}
			server := (<-chan struct{})(hs.draining)
			if window == 0 {
				if want := []<-chan struct{}{server, server, server}; !slices.Equal(seen, want) {
					t.Errorf("without Spread, the requests saw %v, want the server's channel %v for each", seen, server)
				}
				return
			}
			switch {
			case seen[0] != seen[1]:
				t.Error("two requests on one connection saw different channels")
			case seen[0] == seen[2]:
				t.Error("requests on two connections saw the same channel")
			case seen[0] == server || seen[2] == server:
				t.Error("a request saw the server's channel, not its connection's")
			}
		})
	}
}

// Streaming handlers that end on Draining end spread over the window, and
// the drain is clean.
func TestSpreadEndsStreamsOverTheWindow(t *testing.T) {
	const n, window = 20, 400 * time.Millisecond
	var mu sync.Mutex
	var ended []time.Time
	streaming := make(chan struct{}, n)
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		streaming <- struct{}{}
		<-Draining(r.Context())
		mu.Lock()
		ended = append(ended, time.Now())
		mu.Unlock()
		fmt.Fprint(w, "data: bye\n\n")
	})}).Spread(window)
	h := runUntilReady(t, hs, Period(10*time.Second))
	bodies := make(chan string, n)
	for range n {
		go func() {
			// A client of its own for each stream: one connection each.
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			resp, err := c.Get("http://" + hs.Addr().String())
			if err != nil {
				bodies <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				b = append(b, " / "+err.Error()...)
			}
			bodies <- string(b)
		}()
	}
	for range n {
		<-streaming
	}
	sigAt := time.Now()
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	for range n {
		if got, want := <-bodies, "data: hello\n\ndata: bye\n\n"; got != want {
			t.Errorf("a client read %q, want %q", got, want)
		}
	}
	slices.SortFunc(ended, time.Time.Compare)
	first, last := ended[0].Sub(sigAt), ended[n-1].Sub(sigAt)
	t.Logf("%d streams ended between %v and %v after the signal (window %v)", n, first, last, window)
	if first < 0 {
		t.Errorf("a stream ended %v before the signal", -first)
	}
	// Twenty moments drawn uniformly from the window fall within a quarter
	// of it with a probability below 1e-10.
	if spread := last - first; spread < window/4 {
		t.Errorf("the streams ended within %v of each other, want them spread over the %v window", spread, window)
	}
	// The upper bound is loose: a loaded machine may be slow to run the
	// handlers, but not by seconds.
	if last > window+3*time.Second {
		t.Errorf("the last stream ended %v after the signal, want within the %v window", last, window)
	}
}

func TestSpreadAfterServe(t *testing.T) {
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
	served := make(chan error, 1)
	go func() { served <- hs.Serve(context.Background()) }()
	<-hs.Ready()
	hs.Spread(time.Second)
	if err := hs.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	err := <-served
	if err == nil || !strings.HasPrefix(err.Error(), "lameduck: HTTPServer.Spread called after Serve began") {
		t.Errorf("Serve = %v, want an error saying that Spread came after Serve began", err)
	}
}
