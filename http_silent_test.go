package lameduck

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// A connection that was accepted but has sent nothing is owed no response:
// it does not hold up Shutdown, and Shutdown closes it on the way out.
func TestFromHTTPSilentConnection(t *testing.T) {
	t.Run("real sockets", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})
		h := runUntilReady(t, hs, Period(time.Hour))
		addr := hs.Addr().String()
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		// A completed request on a later connection shows the silent one
		// has been accepted: the accept loop takes connections in order.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		if code, _, err := get(client, "http://"+addr); err != nil || code != 200 {
			t.Fatalf("request after the silent connection: %d, %v", code, err)
		}
		sendSignal(h)
		// With a one-hour period, only a drain that ignores the silent
		// connection returns.
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if _, err := silent.Read(make([]byte, 1)); err == nil {
			t.Error("the silent connection is still open after the drain")
		}
	})
}
