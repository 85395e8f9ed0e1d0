package lameduck

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"
)

func probe(t *testing.T, r *Readiness) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestReadiness(t *testing.T) {
	var r Readiness
	if code, body := probe(t, &r); code != 200 || body != "ok" {
		t.Errorf("before Fail: %d %q, want 200 \"ok\"", code, body)
	}
	if err := r.Fail(context.Background()); err != nil {
		t.Fatalf("Fail = %v", err)
	}
	if code, body := probe(t, &r); code != 503 || body != "lame duck\n" {
		t.Errorf("after Fail: %d %q, want 503 \"lame duck\\n\"", code, body)
	}
}

func TestDelay(t *testing.T) {
	cases := []struct {
		name    string
		d       time.Duration
		budget  time.Duration
		want    time.Duration
		wantErr error
	}{
		{"waits d", 5 * time.Second, time.Hour, 5 * time.Second, nil},
		{"gives up when the context ends", 5 * time.Second, 2 * time.Second, 2 * time.Second, context.DeadlineExceeded},
		{"zero does not wait", 0, time.Hour, 0, nil},
		{"negative does not wait", -time.Second, time.Hour, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), c.budget)
				defer cancel()
				begin := time.Now()
				err := Delay(c.d)(ctx)
				if got := time.Since(begin); got != c.want || err != c.wantErr {
					t.Errorf("took %v and returned %v; want %v and %v", got, err, c.want, c.wantErr)
				}
			})
		})
	}
}

// The Kubernetes wiring in one line: during the delay the server still
// answers requests, but the probe says 503; then the drain.
func TestReadinessWiring(t *testing.T) {
	var ready Readiness
	mux := http.NewServeMux()
	mux.Handle("/readyz", &ready)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	inDelay := make(chan struct{})
	leaveDelay := make(chan struct{})
	// A Delay the test controls: it stands for Delay(5*time.Second).
	delay := func(ctx context.Context) error {
		close(inDelay)
		<-leaveDelay
		return nil
	}
	h := launch(t, hs, WithPreShutdown(Chain(ready.Fail, delay)))
	base := "http://" + hs.Addr().String()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if code, _, err := get(client, base+"/readyz"); err != nil || code != 200 {
		t.Fatalf("probe before the signal: %d, %v", code, err)
	}
	sendSignal(h)
	<-inDelay
	if code, _, err := get(client, base+"/readyz"); err != nil || code != 503 {
		t.Errorf("probe during the delay: %d, %v; want 503", code, err)
	}
	if code, body, err := get(client, base+"/"); err != nil || code != 200 || body != "hello" {
		t.Errorf("request during the delay: %d %q, %v; want 200 \"hello\"", code, body, err)
	}
	close(leaveDelay)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
