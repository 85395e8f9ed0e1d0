package lameduck

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestFailUntilSeenSkipsTheKeepAliveWait: once a FailUntilSeen step has
// seen the balancer read the probe's failure, and Seen says that balancer
// is the only way in (Sole), nothing more is sent, so the drain does not
// keep idle keep-alive connections open
// (the wait that is there for passive proxies, up to a second, was most of
// an instance's exit behind HAProxy: ~100 ms of 206). Without the count
// reached (the step's ceiling ends it), or without Sole (an outside review:
// kube-proxy's pinned connections lost a request each), the wait stays:
// here it is set to an hour, so the period runs out.
func TestFailUntilSeenSkipsTheKeepAliveWait(t *testing.T) {
	for _, c := range []struct{ checked, sole bool }{{true, true}, {false, true}, {true, false}} {
		checked, sole := c.checked, c.sole
		skips := checked && sole
		t.Run(fmt.Sprintf("checked=%v/sole=%v", checked, sole), func(t *testing.T) {
			var ready Readiness
			mux := http.NewServeMux()
			mux.Handle("/readyz", &ready)
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
			h := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
			h.tracker.SetQuiet(time.Hour)
			_, trigger, done := startReportRun(t, h, time.Second,
				WithPreShutdown(ready.FailUntilSeen(Seen{Ceiling: 300 * time.Millisecond, Sole: sole})))
			addr := h.Addr().String()

			// A proxy's pooled connection: two requests, then idle.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for range 2 {
				fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}

			trigger()
			if checked {
				// The balancer's check reads the 503 and hangs up.
				for {
					resp, err := http.Get("http://" + addr + "/readyz")
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable {
						http.DefaultClient.CloseIdleConnections()
						break
					}
				}
			}
			err = <-done
			if skips && err != nil {
				t.Errorf("Run = %v, want nil: the drain need not wait for the idle connection", err)
			}
			if !skips && ExitCode(err) != 2 {
				t.Errorf("Run = %v, want an expiry: without the count, or without Sole, the idle connection is kept", err)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Error("the idle connection is still open after Run")
			}
		})
	}
}
