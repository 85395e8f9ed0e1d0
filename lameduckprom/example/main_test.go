package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The longest any one wait of this test may last; none should come near.
const patience = 15 * time.Second

// TestScrapeDuringDrain builds the example, runs it as a child process,
// holds three uploads in flight, sends it SIGTERM, and reads its real
// /metrics endpoint while the drain is under way: lame-duck mode with three
// requests in flight, then, once the uploads have been let finish, none in
// flight, three finished and a clean outcome, before the process exits 0.
func TestScrapeDuringDrain(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot deliver SIGTERM")
	}
	bin, err := proctest.Build(t.TempDir(), "example", ".", "-race")
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, bin, "-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0", "-period", "20s", "-linger", "20s")
	p.Bound = patience
	t.Cleanup(func() { // proctest logs stderr; this example's stdout says where it listens
		if t.Failed() {
			t.Logf("the example's stdout:\n%s", strings.Join(p.Lines(false), "\n"))
		}
	})
	metricsURL := after(t, p, false, "metrics on ")
	apiURL := after(t, p, false, "api listening on ")

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	const n = 3
	uploads := make([]*upload, n)
	for i := range uploads {
		uploads[i] = startUpload(t, client, apiURL+"/upload")
	}
	defer func() {
		for _, u := range uploads {
			u.body.Close() // lets a failed test's uploads end
		}
	}()
	inFlight := `lameduck_in_flight{kind="requests",protocol="HTTP/1",server=""}`
	scrapeUntil(t, metricsURL, "3 uploads in flight", func(s scrape) bool { return s.value(inFlight) == n })

	signalled := p.Term()
	// The drain is under way once Shutdown runs; the uploads hold it.
	ld := scrapeUntil(t, metricsURL, "lame-duck mode with Shutdown running", func(s scrape) bool {
		return s.value(`lameduck_state{state="lame_duck"}`) == 1 && s.value(`lameduck_stop_phase_running{phase="Shutdown"}`) == 1
	})
	t.Logf("a scrape during lame-duck mode:\n%s", ld.text)
	ld.want(t, inFlight, n)
	ld.want(t, `lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/1",server=""}`, n)
	ld.want(t, `lameduck_stop_finished{kind="requests",protocol="HTTP/1",server=""}`, 0)
	ld.want(t, `lameduck_stop_outcome{outcome="clean"}`, 0)
	began := ld.named("lameduck_lame_duck_start_time_seconds")
	if at := began[`trigger="signal"`]; len(began) != 1 || at < float64(signalled.UnixNano())/1e9 || at > float64(time.Now().UnixNano())/1e9 {
		t.Errorf("lameduck_lame_duck_start_time_seconds: %v, want one series, trigger signal, between the signal and now", began)
	}

	// The uploads go on during the drain; then each ends.
	for _, u := range uploads {
		u.send(t, "the rest of the upload\n")
		u.body.Close()
	}
	want := fmt.Sprintf("200 got %d bytes\n", len("the first part\n")+len("the rest of the upload\n"))
	for _, u := range uploads {
		select {
		case got := <-u.reply:
			if got != want {
				t.Errorf("an upload got %q, want %q", got, want)
			}
		case <-time.After(patience):
			t.Fatal("an upload got no reply")
		}
	}

	// Run's last line is its report. The example must then wait with
	// /metrics up until one scrape has read the final account, and exit
	// only after it.
	after(t, p, true, `msg="lameduck: stop report"`)
	select {
	case <-p.Exited():
		t.Fatal("the example exited before its final account was scraped")
	default:
	}
	var seen []float64
	end := scrapeUntil(t, metricsURL, "the stop's end", func(s scrape) bool {
		seen = append(seen, s.value(inFlight))
		return s.value(`lameduck_state{state="stopped"}`) == 1
	})
	t.Logf("requests in flight, scrape by scrape, once Run had returned: %v", seen)
	t.Logf("the scrape after Run returned:\n%s", end.text)
	end.want(t, inFlight, 0)
	end.want(t, `lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/1",server=""}`, n)
	end.want(t, `lameduck_stop_finished{kind="requests",protocol="HTTP/1",server=""}`, n)
	end.want(t, `lameduck_stop_cut{kind="requests",protocol="HTTP/1",server=""}`, 0)
	end.want(t, `lameduck_stop_held{kind="requests",protocol="HTTP/1",server=""}`, 0)
	end.want(t, `lameduck_stop_outcome{outcome="clean"}`, 1)
	end.want(t, `lameduck_stop_phase_failed{phase="Shutdown"}`, 0)
	end.want(t, `lameduck_stop_phase_running{phase="Shutdown"}`, 0)

	select {
	case <-p.Exited():
	case <-time.After(patience):
		t.Fatal("the example did not exit after its final scrape")
	}
	if code, _ := p.Wait(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// after waits for a line of the example's stdout (or stderr) that contains
// substr, and returns what follows substr in it.
func after(t *testing.T, p *proctest.Proc, stderr bool, substr string) string {
	t.Helper()
	_, rest, _ := strings.Cut(p.WaitFor(stderr, 1, substr)[0], substr)
	return rest
}

// upload is a POST whose body the test writes as it goes: the request is
// in flight on the server until the body is closed.
type upload struct {
	body  *io.PipeWriter
	reply chan string // "200 got 38 bytes\n", or the error
}

func startUpload(t *testing.T, client *http.Client, url string) *upload {
	t.Helper()
	r, w := io.Pipe()
	req, err := http.NewRequest("POST", url, r)
	if err != nil {
		t.Fatal(err)
	}
	u := &upload{body: w, reply: make(chan string, 1)}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			u.reply <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			u.reply <- err.Error()
			return
		}
		u.reply <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	u.send(t, "the first part\n")
	return u
}

// send writes s to the upload's body; it returns once the client has taken
// it to send.
func (u *upload) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(u.body, s); err != nil {
		t.Fatalf("upload: %v", err)
	}
}

// scrape is one answer of the /metrics endpoint.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

// scraper opens a new connection for every scrape, so that none is left
// open for the example's metrics server to wait for or to close under us.
var scraper = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// get scrapes url once.
func get(url string) (scrape, error) {
	resp, err := scraper.Get(url)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return scrape{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("%s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return scrape{}, fmt.Errorf("%w in\n%s", err, b)
	}
	return scrape{text: string(b), families: fams}, nil
}

// scrapeUntil scrapes url again and again until done says the scrape is
// the one awaited, and returns it; what is awaited names it in a failure.
// Each scrape is a real request, so the loop goes no faster than the
// endpoint answers, plus a short pause.
func scrapeUntil(t *testing.T, url, what string, done func(scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(patience)
	var last scrape
	for {
		s, err := get(url)
		if err != nil {
			t.Fatalf("waiting for %s: scrape: %v", what, err)
		}
		if done(s) {
			return s
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("no scrape showed %s within %v; the last one:\n%s", what, patience, last.text)
		}
		time.Sleep(10 * time.Millisecond) // a pause between scrapes, not a wait for anything
	}
}

// named returns the scrape's samples of one metric, by their labels.
func (s scrape) named(name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range s.families[name].GetMetric() {
		var labels []string
		for _, lp := range m.GetLabel() {
			labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
		}
		out[strings.Join(labels, ",")] = m.GetGauge().GetValue()
	}
	return out
}

// value returns the sample written as in the text format, name{labels}
// with labels in order, or -1 if there is none.
func (s scrape) value(series string) float64 {
	name, labels, _ := strings.Cut(series, "{")
	v, ok := s.named(name)[strings.TrimSuffix(labels, "}")]
	if !ok {
		return -1
	}
	return v
}

// want checks one sample of the scrape.
func (s scrape) want(t *testing.T, series string, v float64) {
	t.Helper()
	if got := s.value(series); got != v {
		t.Errorf("%s = %v, want %v", series, got, v)
	}
}
