// Command worker consumes jobs from a spool directory (see spool.go) and
// stops without losing one. On SIGTERM or Ctrl-C it stops claiming jobs,
// finishes the ones in flight for up to -period, and exits with work/ empty.
//
// It prints "ready" once it is consuming and handles signals, and on exit
// "done=N new=N work=N". Exit status: 0 after a clean stop, 1 on failure, 2
// when the period ran out or a second signal forced the stop (jobs cut short
// stay in work/ and are retried by the next start).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
)

func main() {
	dir := flag.String("dir", "spool", "spool directory (created if absent)")
	concurrency := flag.Int("concurrency", 4, "jobs handled at once")
	work := flag.Duration("work", 50*time.Millisecond, "simulated time per job")
	period := flag.Duration("period", 10*time.Second, "lame-duck period: the most time to finish jobs in flight")
	enqueue := flag.Int("enqueue", 0, "write this many new jobs before starting")
	exitWhenDone := flag.Bool("exit-when-done", false, "exit once new/ is empty instead of waiting for more jobs")
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*dir, *concurrency, *work, *period, *enqueue, *exitWhenDone))
}

func run(dir string, concurrency int, work, period time.Duration, enqueue int, exitWhenDone bool) int {
	sp, requeued, err := openSpool(dir)
	if err != nil {
		glog.Errorf("opening the spool: %v", err)
		return 1
	}
	if requeued > 0 {
		glog.Infof("put %d jobs left in work/ by an earlier run back in new/", requeued)
	}
	if err := sp.enqueue(enqueue); err != nil {
		glog.Errorf("enqueueing: %v", err)
		return 1
	}
	sp.exitWhenDone = exitWhenDone

	handle := func(ctx context.Context, name string) error {
		t := time.NewTimer(work)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			// Forced stop: the job stays in work/ for the next start.
			return ctx.Err()
		}
		return sp.finish(name)
	}
	w := lameduck.FromWorker(sp.claim, handle).Concurrency(concurrency)
	// "ready" once the handlers are installed: a script waits for it before
	// it sends SIGTERM.
	err = lameduck.Run(context.Background(), w, lameduck.Period(period),
		lameduck.WithReady(func() { fmt.Println("ready") }))
	if err != nil {
		glog.Errorf("%v", err)
	}
	newN, workN, doneN, cerr := sp.counts()
	if cerr != nil {
		glog.Errorf("counting jobs: %v", cerr)
	}
	fmt.Printf("done=%d new=%d work=%d\n", doneN, newN, workN)
	glog.Flush()
	return lameduck.ExitCode(err)
}
