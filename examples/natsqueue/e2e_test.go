package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const ackWait = 2 * time.Second

// TestQueueE2E runs the consumer binary against a real nats-server -js while
// a producer publishes jobs at a steady rate, stops it with SIGTERM and
// SIGKILL over and over, and checks the ledger: every job handled or
// dead-lettered (0 lost), poison jobs dead-lettered and never a reason to
// stop, duplicates only where a SIGKILL cut a job between its side effect
// and its ack. Then, under a backlog, it compares the naive Stop() with
// ReleaseSource: the prefetched messages that reach no handler.
func TestQueueE2E(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not installed (the Debian package nats-server; .ci/test installs it from apt-packages)")
	}
	dir := t.TempDir()
	url := startNATS(t, natsBin, dir)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "JOBS", Subjects: []string{"jobs"}}); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(dir, "consumer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The producer: 1000 jobs, one every 5ms; every 50th is poison, one
	// panics.
	const jobs = 1000
	var want, poison []string
	produced := make(chan struct{})
	t.Cleanup(func() { <-produced })
	go func() {
		defer close(produced)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := range jobs {
			<-tick.C
			if _, err := js.Publish(ctx, "jobs", []byte(jobName(i))); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	want = append(want, "slow-1")
	for i := range jobs {
		if j := jobName(i); strings.HasPrefix(j, "poison") || strings.HasPrefix(j, "panic") {
			poison = append(poison, j)
		} else {
			want = append(want, j)
		}
	}
	handledN := func() uint64 { return streamMsgs(t, js, "HANDLED") }
	cons := func() *jetstream.ConsumerInfo {
		c, err := js.Consumer(ctx, "JOBS", "workers")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}

	// Rounds: kills in rounds 2, 5 and 8; SIGTERM otherwise (slow-1 cut by
	// Close in round 1, a second SIGTERM in round 4).
	var st stats
	kills, forced := 0, 0
	for round := range 9 {
		c := startConsumer(t, bin, url, true)
		var base uint64
		if round > 0 {
			base = handledN()
		}
		waitFor(t, fmt.Sprintf("round %d: 20 jobs handled", round), func() bool {
			if c.exited() {
				t.Fatalf("round %d: the consumer exited on its own (crash-loop?): %v\n%s", round, c.wait(), c.stderr())
			}
			select {
			case <-produced:
				if cons().NumPending == 0 {
					return true // nothing left to handle
				}
			default:
			}
			return handledN() >= base+20
		})
		switch {
		case round%3 == 2:
			kills++
			_ = c.cmd.Process.Kill()
			_ = c.wait()
			continue
		case round == 1:
			ack, err := js.Publish(ctx, "jobs", []byte("slow-1"))
			if err != nil {
				t.Fatal(err)
			}
			// Once slow-1 is delivered to this consumer it is either in a
			// handler or in the prefetch buffer, which ReleaseSource hands
			// back within the period: either way Close must cut it.
			waitFor(t, "slow-1 delivered to the consumer", func() bool { return cons().Delivered.Stream >= ack.Sequence })
			forced++
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(c.wait()); code != 2 {
				t.Errorf("round %d: exit status %d with a job longer than the period, want 2\n%s", round, code, c.stderr())
			}
		case round == 4:
			forced++
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(c.wait()); code != 0 && code != 2 {
				t.Errorf("round %d: exit status %d after two SIGTERMs, want 0 or 2\n%s", round, code, c.stderr())
			}
		default:
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(c.wait()); code != 0 {
				t.Errorf("round %d: exit status %d after SIGTERM, want 0\n%s", round, code, c.stderr())
			}
		}
		st.add(c.stats(t))
	}
	<-produced

	// Backlog: 300 jobs waiting, then one SIGTERM of a naive consumer
	// (Stop()) and one of a releasing consumer, 20 jobs in.
	for i := range 300 {
		if _, err := js.Publish(ctx, "jobs", []byte(fmt.Sprintf("backlog-%d", i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("backlog-%d", i))
	}
	var ctl, rel stats
	for _, release := range []bool{false, true} {
		c := startConsumer(t, bin, url, release)
		base := handledN()
		waitFor(t, "20 backlog jobs handled", func() bool { return handledN() >= base+20 })
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := exitCode(c.wait()); code != 0 {
			t.Errorf("backlog, release=%v: exit status %d after SIGTERM, want 0\n%s", release, code, c.stderr())
		}
		s := c.stats(t)
		if release {
			rel = s
		} else {
			ctl = s
		}
	}
	if ctl.dropped == 0 {
		t.Errorf("control: the naive Stop() dropped no prefetched message under a backlog (delivered %d, got %d)", ctl.delivered, ctl.got)
	}
	if rel.dropped != 0 {
		t.Errorf("ReleaseSource: %d prefetched messages reached no handler (delivered %d, got %d), want 0", rel.dropped, rel.delivered, rel.got)
	}

	// The last consumer runs until everything is acked, including what the
	// naive Stop() dropped (it comes back after AckWait), and a job longer
	// than AckWait: InProgress heartbeats keep the server from redelivering
	// it meanwhile (which would be a duplicate).
	if _, err := js.Publish(ctx, "jobs", []byte("long-1")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "long-1")
	c := startConsumer(t, bin, url, true)
	waitFor(t, "the stream consumed", func() bool {
		if c.exited() {
			t.Fatalf("the last consumer exited on its own: %v\n%s", c.wait(), c.stderr())
		}
		i := cons()
		return i.NumPending == 0 && i.NumAckPending == 0
	})
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(c.wait()); code != 0 {
		t.Errorf("last round: exit status %d after SIGTERM, want 0\n%s", code, c.stderr())
	}
	st.add(c.stats(t))

	// The ledger.
	handled := streamCount(t, js, "HANDLED")
	dead := streamCount(t, js, "DEAD")
	lost, dups := 0, 0
	for _, j := range want {
		switch n := handled[j]; {
		case n == 0:
			lost++
			t.Errorf("job %s was never handled", j)
		case n > 1:
			dups += n - 1
		}
	}
	deadDups := 0
	for _, j := range poison {
		if dead[j] < 1 || handled[j] != 0 {
			t.Errorf("poison job %s: dead-lettered %d times, handled %d times; want once and 0", j, dead[j], handled[j])
		}
		deadDups += max(dead[j]-1, 0)
	}
	const concurrency = 4
	// A SIGKILL cuts at most one job per handler between its side effect
	// (or its dead-letter) and its ack; a SIGTERM, even a forced one, cuts
	// none: Close cancels the handler before its side effect and Settle
	// Naks the job (slow-1 in round 1).
	if dups+deadDups > kills*concurrency {
		t.Errorf("%d duplicates (%d dead-letters), want at most %d (%d kills × %d handlers)", dups, deadDups, kills*concurrency, kills, concurrency)
	}
	t.Logf("ledger: %d jobs, %d handled, %d dead-lettered, %d lost, %d duplicates (+%d dead-letters); %d SIGKILLs, %d forced stops",
		len(want)+len(poison), len(handled), len(dead), lost, dups, deadDups, kills, forced)
	t.Logf("rounds with ReleaseSource (light load): %d deliveries, %d reached the Worker, %d dropped", st.delivered, st.got, st.dropped)
	t.Logf("backlog, naive Stop(): %d deliveries, %d reached the Worker, %d dropped (back only after AckWait)", ctl.delivered, ctl.got, ctl.dropped)
	t.Logf("backlog, ReleaseSource: %d deliveries, %d reached the Worker, %d dropped", rel.delivered, rel.got, rel.dropped)
}

func jobName(i int) string {
	switch {
	case i == 333:
		return fmt.Sprintf("panic-%d", i)
	case i%50 == 25:
		return fmt.Sprintf("poison-%d", i)
	}
	return fmt.Sprintf("job-%d", i)
}

type stats struct{ delivered, got, dropped int }

func (s *stats) add(o stats) {
	s.delivered += o.delivered
	s.got += o.got
	s.dropped += o.dropped
}

func startNATS(t *testing.T, bin, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close()
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", filepath.Join(dir, "store"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nats-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "nats://127.0.0.1:" + port
	waitFor(t, "nats-server with JetStream", func() bool {
		nc, err := nats.Connect(url)
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		_, err = js.AccountInfo(context.Background())
		return err == nil
	})
	return url
}

type consumer struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	errBuf *strings.Builder
	mu     sync.Mutex
	st     string
}

func startConsumer(t *testing.T, bin, url string, release bool) *consumer {
	t.Helper()
	c := &consumer{done: make(chan struct{}), errBuf: &strings.Builder{}}
	c.cmd = exec.Command(bin, "-url", url, "-work", "5ms", "-slow", "10s", "-long", "3s",
		"-concurrency", "4", "-period", "1s", "-ackwait", ackWait.String(), "-prefetch", "100",
		"-release="+strconv.FormatBool(release))
	c.cmd.Stderr = c.errBuf
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting the consumer: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "stats "):
				c.mu.Lock()
				c.st = line
				c.mu.Unlock()
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	select {
	case <-ready:
	case <-c.done:
		t.Fatalf("the consumer exited before it was ready: %v\n%s", c.err, c.errBuf)
	}
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.done })
	return c
}

func (c *consumer) stats(t *testing.T) stats {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	var s stats
	if _, err := fmt.Sscanf(c.st, "stats delivered=%d got=%d dropped=%d", &s.delivered, &s.got, &s.dropped); err != nil {
		t.Errorf("no stats line from the consumer (%q): %v", c.st, err)
	}
	return s
}

func (c *consumer) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *consumer) wait() error { <-c.done; return c.err }

func (c *consumer) stderr() string { <-c.done; return c.errBuf.String() }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// waitFor polls cond until it holds, for at most 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		return 0 // not created yet
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// streamCount reads a whole stream and counts each message's text.
func streamCount(t *testing.T, js jetstream.JetStream, name string) map[string]int {
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", name, seq, err)
		}
		m[string(msg.Data)]++
	}
	return m
}
