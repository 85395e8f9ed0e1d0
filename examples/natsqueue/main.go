// Command natsqueue consumes jobs from a NATS JetStream stream with a
// durable pull consumer and the prefetching Messages() iterator, and stops
// without dropping what it prefetched. It shows what a FromWorker consumer
// on JetStream needs:
//
//   - the iterator is opened at start ([lameduck.Worker.StartSource]) and
//     next waits on it with its context (jetstream.NextContext), so
//     lame-duck mode never waits for a pull;
//   - the prefetched buffer is handed back at lame-duck
//     ([lameduck.Worker.ReleaseSource]): the iterator is drained, not
//     stopped, and what it held is handled within the period or, if Close
//     comes first, Nak'd by Settle. A naive Stop() throws the buffer away:
//     those messages reach no handler and come back only after AckWait (run
//     with -release=false to see it; the exit line counts them);
//   - acks in one place ([lameduck.Worker.Settle]): a done job is acked and
//     the ack confirmed (DoubleAck), a job cut by Close is Nak'd
//     (redelivered at once), and a poison job (its handler failed or
//     panicked) is published to a dead-letter subject and then acked, so
//     the service goes on instead of meeting it again at every restart;
//   - heartbeats: while a job runs, InProgress resets its AckWait, so a job
//     longer than AckWait is not redelivered to someone else meanwhile;
//   - the connection is drained after Run, so that the fire-and-forget Naks
//     reach the server before the process exits.
//
// A job is a string. This demo "handles" it by publishing it to the
// -handled subject (the side effect the e2e test's ledger reads) after
// -work; a job whose text starts with "poison" fails, one that starts with
// "panic" panics, one that starts with "slow" takes -slow on its first
// delivery, and one that starts with "long" takes -long every time. It
// prints "ready" once it consumes and handles signals, and as it exits a
// line "stats delivered=D got=G dropped=X": deliveries the server made to
// this process, messages that reached the Worker, and the difference
// (prefetched messages no handler saw). Exit status: 0 after a clean stop,
// 1 on failure, 2 after a forced stop.
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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server URL")
	var s source
	flag.StringVar(&s.stream, "stream", "JOBS", "stream of the jobs (created if missing, on -subject)")
	flag.StringVar(&s.subject, "subject", "jobs", "subject the producers publish jobs to")
	flag.StringVar(&s.durable, "durable", "workers", "durable pull consumer (created if missing)")
	flag.StringVar(&s.dead, "dead", "dead.jobs", "dead-letter subject for poison jobs (a stream DEAD is created on it)")
	flag.IntVar(&s.prefetch, "prefetch", 100, "messages the iterator prefetches")
	flag.DurationVar(&s.ackWait, "ackwait", 30*time.Second, "the consumer's AckWait")
	release := flag.Bool("release", true, "hand the prefetched messages back at lame-duck (false: the naive Stop(), for comparison)")
	handled := flag.String("handled", "handled.jobs", "subject the demo handler records each job on (a stream HANDLED is created on it)")
	work := flag.Duration("work", 20*time.Millisecond, "simulated time per job")
	slow := flag.Duration("slow", 10*time.Second, "simulated time of a job whose text starts with \"slow\", on its first delivery")
	long := flag.Duration("long", 3*time.Second, "simulated time of a job whose text starts with \"long\"")
	concurrency := flag.Int("concurrency", 4, "jobs handled at once")
	period := flag.Duration("period", 5*time.Second, "lame-duck period")
	_ = flag.Set("logtostderr", "true")
	flag.Parse()

	closed := make(chan struct{})
	nc, err := nats.Connect(*url, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err == nil {
		err = run(nc, &s, *release, *handled, *work, *slow, *long, *concurrency, *period)
		// Naks and InProgress are fire-and-forget: drain the connection so
		// that they reach the server before the process exits.
		if derr := nc.Drain(); derr == nil {
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
			}
		}
	}
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	os.Exit(lameduck.ExitCode(err))
}

func run(nc *nats.Conn, s *source, release bool, handledSubj string, work, slow, long time.Duration, concurrency int, period time.Duration) error {
	ctx := context.Background()
	if err := s.setUp(ctx, nc, handledSubj); err != nil {
		return err
	}
	handle := func(ctx context.Context, msg jetstream.Msg) error {
		job := string(msg.Data())
		stop := s.heartbeat(msg)
		defer stop()
		d := work
		switch {
		case strings.HasPrefix(job, "slow"):
			// Longer than the period the first time, so that Close cuts it.
			if md, err := msg.Metadata(); err == nil && md.NumDelivered == 1 {
				d = slow
			}
		case strings.HasPrefix(job, "long"):
			d = long
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err() // cut by Close: Settle Naks the job
		}
		switch {
		case strings.HasPrefix(job, "poison"):
			return fmt.Errorf("job %q: cannot parse", job)
		case strings.HasPrefix(job, "panic"):
			panic("job " + job)
		}
		_, err := s.js.Publish(ctx, handledSubj, msg.Data())
		return err
	}
	w := lameduck.FromWorker(s.next, handle).
		Concurrency(concurrency).
		StartSource(s.start).
		Settle(s.settle).
		// A failed job is dead-lettered by Settle; the Worker goes on.
		OnError(func(_ context.Context, msg jetstream.Msg, err error) error {
			glog.Warningf("dead-lettering job %q: %v", msg.Data(), err)
			return nil
		})
	if release {
		w.ReleaseSource(s.release)
	}
	err := lameduck.Run(ctx, w, lameduck.Period(period),
		lameduck.WithReady(func() { fmt.Println("ready") }))
	s.report(ctx)
	return err
}
