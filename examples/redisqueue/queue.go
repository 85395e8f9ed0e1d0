package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/redis/go-redis/v9"
)

// queue is a Redis reliable queue: jobs wait in name, and a job this
// consumer has taken sits in processing until it is settled.
type queue struct {
	rdb                    *redis.Client
	name, processing, dead string

	// The dedicated connection that next blocks on, and its client ID
	// (for CLIENT UNBLOCK). Only next uses them, and FromWorker never
	// runs two calls of next at once.
	conn *redis.Conn
	id   int64
	mu   sync.Mutex // guards conn against closeConn
}

// blockFor bounds one BLMOVE. CLIENT UNBLOCK ends the wait as soon as the
// context ends; the bound only covers the unlucky case where the context
// ends after next checked it but before BLMOVE reached the server, when
// the unblock finds nothing to unblock.
const blockFor = time.Second

// recoverProcessing moves every job left in processing (by a consumer that was
// killed, or cut by Close) back to the queue, at the end that is taken
// next. It is the StartSource hook.
func (q *queue) recoverProcessing(ctx context.Context) error {
	n := 0
	for {
		_, err := q.rdb.LMove(ctx, q.processing, q.name, "RIGHT", "RIGHT").Result()
		if errors.Is(err, redis.Nil) {
			if n > 0 {
				fmt.Printf("recovered %d\n", n)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("recovering %s: %w", q.processing, err)
		}
		n++
	}
}

// next takes one job, moving it atomically from the queue to processing.
//
// The go-redis trap: go-redis does not give up a blocking command when its
// context is cancelled. BLMOVE waits out its own timeout (or returns a job
// well after the cancel), so a naive next makes lame-duck mode wait for it,
// and with an empty queue the stop runs into the period. And a client-side
// give-up would be worse: the server may already have moved a job to
// processing when the reply is thrown away. So next blocks on a dedicated
// connection whose client ID it knows, and when its context ends,
// context.AfterFunc sends CLIENT UNBLOCK for that ID on another connection:
// the server ends the BLMOVE at once as if it had timed out (a nil reply),
// and no reply is ever dropped. A job that the server moved before the
// unblock is returned even though the context has ended; FromWorker
// handles it.
func (q *queue) next(ctx context.Context) (string, error) {
	conn, id, err := q.dedicated(ctx)
	if err != nil {
		return "", err
	}
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		stop := context.AfterFunc(ctx, func() {
			_ = q.rdb.ClientUnblock(context.Background(), id).Err()
		})
		// WithoutCancel: the reply must be read, whatever the context.
		job, err := conn.BLMove(context.WithoutCancel(ctx), q.name, q.processing, "RIGHT", "LEFT", blockFor).Result()
		// An unblock still on its way is harmless: it only ends a BLMOVE
		// that is blocked, and this one has returned.
		stop()
		switch {
		case err == nil:
			return job, nil
		case errors.Is(err, redis.Nil):
			continue // timed out or unblocked: check the context again
		default:
			return "", fmt.Errorf("BLMOVE %s %s: %w", q.name, q.processing, err)
		}
	}
}

// dedicated returns next's connection, opening it on first use.
func (q *queue) dedicated(ctx context.Context) (*redis.Conn, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		return q.conn, q.id, nil
	}
	conn := q.rdb.Conn()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("CLIENT ID: %w", err)
	}
	q.conn, q.id = conn, id
	return conn, id, nil
}

func (q *queue) closeConn() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		_ = q.conn.Close()
		q.conn = nil
	}
}

// settle is the Settle hook: the job's one ack, in one transaction each, so
// that a job is always in exactly one of the lists.
func (q *queue) settle(ctx context.Context, job string, handled error) {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LRem(ctx, q.processing, 1, job)
		switch {
		case handled == nil:
			// Done: out of processing is all it takes.
		case errors.Is(handled, lameduck.ErrClosed):
			p.RPush(ctx, q.name, job) // cut short by Close: back at the end taken next
		default:
			p.LPush(ctx, q.dead, job) // a poison job: its handler failed or panicked
		}
		return nil
	})
	if err != nil {
		// Still in processing: the next start's recovery re-queues it.
		fmt.Printf("settling job %q (handled: %v): %v\n", job, handled, err)
	}
}
