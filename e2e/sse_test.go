package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseStream is what one client of /events read: the events, each the
// lines before a blank line, and how the body ended.
type sseStream struct {
	chunked bool
	events  [][]string
	partial []string // lines after the last blank line
	end     error    // what ended the reading: io.EOF for a clean end
}

// readEvents reads a text/event-stream response line by line until its
// body ends, and reports on started once the first event has arrived.
func readEvents(url string, started chan<- struct{}) sseStream {
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		started <- struct{}{}
		return sseStream{end: err}
	}
	defer resp.Body.Close()
	s := sseStream{chunked: slices.Equal(resp.TransferEncoding, []string{"chunked"})}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if line != "" {
				s.partial = append(s.partial, line)
			}
			s.end = err
			if len(s.events) == 0 {
				started <- struct{}{}
			}
			return s
		}
		line = strings.TrimSuffix(line, "\n")
		if line != "" {
			s.partial = append(s.partial, line)
			continue
		}
		s.events = append(s.events, s.partial)
		s.partial = nil
		if len(s.events) == 1 {
			started <- struct{}{}
		}
	}
}

// SIGTERM ends every stream of server-sent events cleanly: the handler
// watches lameduck.Draining (the README's recipe), so each client gets a
// complete last event and the chunked body's proper end, not a cut; and
// the process exits 0 as soon as the streams have ended, long before its
// period.
func TestSIGTERMEndsEventStreamsCleanly(t *testing.T) {
	const streams = 4
	p, base := startHTTPServer(t, "-drain-delay", "100ms", "-period", "10s")
	results := make(chan sseStream, streams)
	started := make(chan struct{}, streams)
	var readers sync.WaitGroup
	for range streams {
		readers.Go(func() { results <- readEvents(base+"/events?every=20ms", started) })
	}
	for range streams {
		<-started
	}
	sigAt := p.Term()
	readers.Wait()
	code, exitAt := p.Wait()
	close(results)
	t.Logf("exit %d %v after SIGTERM", code, exitAt.Sub(sigAt).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if d := exitAt.Sub(sigAt); d > 3*time.Second {
		t.Errorf("exited %v after SIGTERM, want the drain to end with the streams (its period is 10s)", d)
	}
	for s := range results {
		if !errors.Is(s.end, io.EOF) {
			t.Errorf("the stream ended with %v, want a clean end (io.EOF)", s.end)
		}
		if !s.chunked {
			t.Error("the response was not chunked; the test proves nothing about its end")
		}
		if len(s.partial) > 0 {
			t.Errorf("the stream ended inside an event: %q", s.partial)
		}
		if len(s.events) < 2 {
			t.Errorf("the stream carried %d events, want ticks and then the last one", len(s.events))
			continue
		}
		last := s.events[len(s.events)-1]
		if want := []string{"event: bye", "data: server going away"}; !slices.Equal(last, want) {
			t.Errorf("the last event was %q, want %q", last, want)
		}
		for i, ev := range s.events[:len(s.events)-1] {
			if want := fmt.Sprintf("data: tick %d", i+1); len(ev) != 2 || ev[1] != want {
				t.Errorf("event %d was %q, want a tick with %q", i, ev, want)
				break
			}
		}
	}
}
