package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestQueueE2E runs the consumer binary against a real redis-server while
// a producer pushes jobs at a steady rate, stops it with SIGTERM and with
// SIGKILL over and over, and then checks the ledger: every job handled or
// dead-lettered (0 lost), poison jobs dead-lettered once and never a reason
// to stop, and duplicates only where a SIGKILL cut a job between its side
// effect and its ack.
func TestQueueE2E(t *testing.T) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (the Debian package redis-server; .ci/test installs it from apt-packages)")
	}
	dir := t.TempDir()
	addr := startRedis(t, redisBin, dir)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	bin := filepath.Join(dir, "consumer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The producer: 600 jobs, one every 2ms; every 50th is poison, one
	// panics.
	const jobs = 600
	var want, poison []string
	produced := make(chan struct{})
	t.Cleanup(func() { <-produced }) // before the client closes
	go func() {
		defer close(produced)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := range jobs {
			<-tick.C
			job := fmt.Sprintf("job-%d", i)
			switch {
			case i == 333:
				job = fmt.Sprintf("panic-%d", i)
			case i%50 == 25:
				job = fmt.Sprintf("poison-%d", i)
			}
			if err := rdb.LPush(ctx, "jobs", job).Err(); err != nil {
				t.Errorf("LPUSH: %v", err)
				return
			}
		}
	}()
	want = append(want, "slow-1")
	for i := range jobs {
		switch {
		case i == 333:
			poison = append(poison, fmt.Sprintf("panic-%d", i))
		case i%50 == 25:
			poison = append(poison, fmt.Sprintf("poison-%d", i))
		default:
			want = append(want, fmt.Sprintf("job-%d", i))
		}
	}

	// Rounds: start a consumer, let it handle some jobs, stop it. Kills in
	// rounds 2, 5 and 8; SIGTERM otherwise (a second SIGTERM in round 4,
	// while draining, forces the stop). The last round runs until the queue
	// is empty.
	kills, forced := 0, 0
	for round := 0; ; round++ {
		last := round >= 9
		if last {
			<-produced
		}
		c := startConsumer(t, bin, addr)
		base := llen(t, rdb, "jobs:handled")
		waitFor(t, fmt.Sprintf("round %d: 20 jobs handled", round), func() bool {
			if c.exited() {
				t.Fatalf("round %d: the consumer exited on its own (crash-loop?): %v\n%s", round, c.wait(), c.stderr())
			}
			if last {
				return llen(t, rdb, "jobs") == 0 && llen(t, rdb, "jobs:processing") == 0
			}
			return llen(t, rdb, "jobs:handled") >= base+20
		})
		switch {
		case !last && round%3 == 2:
			kills++
			_ = c.cmd.Process.Kill()
			_ = c.wait()
			continue
		case round == 1:
			// A job longer than the period, at the head of the queue:
			// Close cuts it, Settle hands it back, a later round does it.
			if err := rdb.RPush(ctx, "jobs", "slow-1").Err(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "slow-1 to start", func() bool {
				n, _ := rdb.Get(ctx, "attempts:slow-1").Int()
				return n == 1
			})
			forced++
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(c.wait()); code != 2 {
				t.Errorf("round %d: exit status %d with a job longer than the period, want 2\n%s", round, code, c.stderr())
			}
			if n := count(t, rdb, "jobs")["slow-1"]; n != 1 {
				t.Errorf("slow-1 is %d times in the queue after Close cut it, want once", n)
			}
			continue
		case round == 4:
			forced++
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			if code := exitCode(c.wait()); code != 0 && code != 2 {
				t.Errorf("round %d: exit status %d after two SIGTERMs, want 0 or 2\n%s", round, code, c.stderr())
			}
			continue
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := exitCode(c.wait()); code != 0 {
			t.Errorf("round %d: exit status %d after SIGTERM, want 0\n%s", round, code, c.stderr())
		}
		if last {
			break
		}
	}

	// The ledger.
	handled := count(t, rdb, "jobs:handled")
	dead := count(t, rdb, "jobs:dead")
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
	for _, j := range poison {
		if dead[j] != 1 || handled[j] != 0 {
			t.Errorf("poison job %s: dead-lettered %d times, handled %d times; want 1 and 0", j, dead[j], handled[j])
		}
	}
	const concurrency = 4
	// A SIGKILL cuts at most one job per handler between its side effect
	// and its ack; a SIGTERM, even a forced one, cuts none: Close cancels
	// the handler before its side effect, and Settle hands the job back
	// (slow-1 in round 1).
	if dups > kills*concurrency {
		t.Errorf("%d duplicates, want at most %d (%d kills × %d handlers)", dups, kills*concurrency, kills, concurrency)
	}
	t.Logf("ledger: %d jobs, %d handled, %d dead-lettered, %d lost, %d duplicates; %d SIGKILLs, %d forced stops",
		len(want)+len(poison), len(handled), len(dead), lost, dups, kills, forced)
}

func startRedis(t *testing.T, bin, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	_ = l.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	waitFor(t, "redis-server answers PING", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return addr
}

type consumer struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	errBuf *strings.Builder
}

func startConsumer(t *testing.T, bin, addr string) *consumer {
	t.Helper()
	c := &consumer{done: make(chan struct{}), errBuf: &strings.Builder{}}
	c.cmd = exec.Command(bin, "-addr", addr, "-work", "5ms", "-slow", "10s", "-concurrency", "4", "-period", "1s")
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
			if sc.Text() == "ready" {
				close(ready)
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

func (c *consumer) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *consumer) wait() error { <-c.done; return c.err }

// stderr is read only once the process has exited.
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

func llen(t *testing.T, rdb *redis.Client, key string) int64 {
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("LLEN %s: %v", key, err)
	}
	return n
}

func count(t *testing.T, rdb *redis.Client, key string) map[string]int {
	items, err := rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatalf("LRANGE %s: %v", key, err)
	}
	m := map[string]int{}
	for _, it := range items {
		m[it]++
	}
	return m
}
