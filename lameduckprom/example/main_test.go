package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	bin := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := start(t, bin, "-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0", "-period", "20s", "-linger", "20s")
	metricsURL := p.line(t, "metrics on ")
	apiURL := p.line(t, "api listening on ")

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

	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
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
	p.line(t, `msg="lameduck: stop report"`)
	select {
	case <-p.exited:
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
	case <-p.exited:
	case <-time.After(patience):
		t.Fatal("the example did not exit after its final scrape")
	}
	if p.code != 0 {
		t.Errorf("exit status %d, want 0", p.code)
	}
}

// proc is the example running as a child process.
type proc struct {
	cmd *exec.Cmd

	mu      sync.Mutex
	out     []string      // its standard output and error, line by line
	changed chan struct{} // closed and replaced when a line comes

	exited chan struct{} // closed once it has exited
	code   int           // its exit status, once exited
}

// start runs bin with args. The process is killed when the test ends if
// it is still running; its output is logged if the test failed.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), changed: make(chan struct{}), exited: make(chan struct{})}
	// The race detector sleeps a second at exit unless told not to.
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reading sync.WaitGroup
	reading.Go(func() { p.read(stdout) })
	reading.Go(func() { p.read(stderr) })
	go func() {
		reading.Wait() // the pipes must be read to their end before Wait
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("the example's output:\n%s", strings.Join(p.out, "\n"))
		}
	})
	return p
}

func (p *proc) read(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20) // the stop report is one long line
	for s.Scan() {
		p.mu.Lock()
		p.out = append(p.out, s.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// line waits for a line of output that contains substr, and returns what
// follows substr in it.
func (p *proc) line(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(patience)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.out); i++ {
			if _, rest, ok := strings.Cut(p.out[i], substr); ok {
				p.mu.Unlock()
				return rest
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("the example exited before it wrote %q", substr)
		case <-timeout:
			t.Fatalf("the example did not write %q within %v", substr, patience)
		}
	}
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
