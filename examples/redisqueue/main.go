// Command redisqueue consumes jobs from a Redis list with the reliable-queue
// pattern (BLMOVE from the queue to a processing list, LREM once done) and
// stops without losing one. It shows what a FromWorker consumer on a real
// broker needs:
//
//   - recovery at start ([lameduck.Worker.StartSource]): jobs that a killed
//     predecessor left in the processing list go back to the queue;
//   - a next that honours its context, although go-redis does not for
//     blocking commands (see queue.next);
//   - acks in one place ([lameduck.Worker.Settle]): a done job is removed
//     from the processing list, a job cut short by Close goes back to the
//     queue, and a poison job (its handler failed or panicked) is moved to
//     the dead-letter list instead of stopping the service, which on
//     restart would find it first again and crash-loop.
//
// One consumer per processing list: recovery takes everything in it. Run
// several consumers with a -processing list each.
//
// A job is a string. This demo "handles" it by pushing it to the -handled
// list (the side effect the e2e test's ledger reads) after -work; a job
// whose text starts with "poison" fails, one that starts with "panic"
// panics, and one that starts with "slow" takes -slow on its first attempt. It prints "ready" once it consumes and handles signals. Exit
// status: 0 after a clean stop, 1 on failure, 2 after a forced stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis address")
	q := queue{}
	flag.StringVar(&q.name, "queue", "jobs", "list the producers LPUSH jobs to")
	flag.StringVar(&q.processing, "processing", "jobs:processing", "list of the jobs this consumer has taken and not settled")
	flag.StringVar(&q.dead, "dead", "jobs:dead", "dead-letter list for poison jobs")
	handled := flag.String("handled", "jobs:handled", "list the demo handler records each job in")
	work := flag.Duration("work", 20*time.Millisecond, "simulated time per job")
	slow := flag.Duration("slow", 10*time.Second, "simulated time of a job whose text starts with \"slow\", on its first attempt")
	concurrency := flag.Int("concurrency", 4, "jobs handled at once")
	period := flag.Duration("period", 5*time.Second, "lame-duck period")
	_ = flag.Set("logtostderr", "true")
	flag.Parse()

	q.rdb = redis.NewClient(&redis.Options{Addr: *addr})
	err := run(&q, *handled, *work, *slow, *concurrency, *period)
	if err != nil {
		glog.Errorf("%v", err)
	}
	// The acks were sent synchronously by Settle; closing the client only
	// releases its connections.
	_ = q.rdb.Close()
	glog.Flush()
	os.Exit(lameduck.ExitCode(err))
}

func run(q *queue, handledList string, work, slow time.Duration, concurrency int, period time.Duration) error {
	handle := func(ctx context.Context, job string) error {
		d := work
		if strings.HasPrefix(job, "slow") {
			// Longer than the period the first time, so that Close cuts it.
			n, err := q.rdb.Incr(ctx, "attempts:"+job).Result()
			if err != nil {
				return err
			}
			if n == 1 {
				d = slow
			}
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err() // cut by Close: Settle hands the job back
		}
		switch {
		case strings.HasPrefix(job, "poison"):
			return fmt.Errorf("job %q: cannot parse", job)
		case strings.HasPrefix(job, "panic"):
			panic("job " + job)
		}
		return q.rdb.RPush(ctx, handledList, job).Err()
	}
	w := lameduck.FromWorker(q.next, handle).
		Concurrency(concurrency).
		StartSource(q.recoverProcessing).
		Settle(q.settle).
		// A failed job is dead-lettered by Settle; the Worker goes on.
		OnError(func(_ context.Context, job string, err error) error {
			glog.Warningf("dead-lettering job %q: %v", job, err)
			return nil
		})
	defer q.closeConn()
	return lameduck.Run(context.Background(), w, lameduck.Period(period),
		lameduck.WithReady(func() { fmt.Println("ready") }))
}
