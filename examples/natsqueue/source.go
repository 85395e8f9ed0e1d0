package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// source is a JetStream durable pull consumer read through the prefetching
// Messages() iterator.
type source struct {
	stream, subject, durable, dead string
	prefetch                       int
	ackWait                        time.Duration

	js   jetstream.JetStream
	cons jetstream.Consumer
	it   jetstream.MessagesContext

	delivered0 uint64       // the consumer's delivered sequence at start
	got        atomic.Int64 // messages that reached the Worker (next or release)
}

// setUp creates the streams and the durable consumer if they are missing.
func (s *source) setUp(ctx context.Context, nc *nats.Conn, handled string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s.js = js
	for name, subj := range map[string]string{s.stream: s.subject, "DEAD": s.dead, "HANDLED": handled} {
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	s.cons, err = js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
		Durable:   s.durable,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   s.ackWait,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.durable, err)
	}
	return nil
}

// start is the StartSource hook: it opens the iterator, which begins to
// prefetch. (A killed predecessor needs no recovery here: the server
// redelivers its unacked messages after AckWait.)
func (s *source) start(ctx context.Context) error {
	info, err := s.cons.Info(ctx)
	if err != nil {
		return err
	}
	s.delivered0 = info.Delivered.Consumer
	s.it, err = s.cons.Messages(jetstream.PullMaxMessages(s.prefetch))
	return err
}

// next returns the next message, prefetched or not. It waits with its
// context, so lame-duck mode ends the wait at once; a message is never
// taken from the buffer and then thrown away.
func (s *source) next(ctx context.Context) (jetstream.Msg, error) {
	msg, err := s.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("next message: %w", err)
	}
	s.got.Add(1)
	return msg, nil
}

// release is the ReleaseSource hook: Drain (not Stop) ends the pulling and
// keeps the buffer, which release hands to the Worker whole.
func (s *source) release(ctx context.Context) ([]jetstream.Msg, error) {
	s.it.Drain()
	var msgs []jetstream.Msg
	for {
		msg, err := s.it.Next(jetstream.NextContext(ctx))
		switch {
		case err == nil:
			msgs = append(msgs, msg)
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			s.got.Add(int64(len(msgs)))
			return msgs, nil
		default:
			// What is left comes back after AckWait.
			s.got.Add(int64(len(msgs)))
			return msgs, fmt.Errorf("releasing prefetched messages: %w", err)
		}
	}
}

// heartbeat tells the server, every half AckWait, that msg is still being
// worked on, until the returned function is called.
func (s *source) heartbeat(msg jetstream.Msg) (stop func()) {
	t := time.NewTicker(s.ackWait / 2)
	done := make(chan struct{})
	go func() {
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// settle is the Settle hook: the message's one ack.
func (s *source) settle(ctx context.Context, msg jetstream.Msg, handled error) {
	var err error
	switch {
	case handled == nil:
		err = msg.DoubleAck(ctx)
	case errors.Is(handled, lameduck.ErrClosed):
		err = msg.Nak() // cut short by Close: redelivered at once, to whoever pulls next
	default:
		// A poison job: its handler failed or panicked.
		h := nats.Header{}
		h.Set("Lameduck-Error", handled.Error())
		_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: s.dead, Data: msg.Data(), Header: h})
		if err == nil {
			err = msg.DoubleAck(ctx)
		}
	}
	if err != nil {
		// Not acked: the server redelivers it after AckWait.
		fmt.Printf("settling job %q (handled: %v): %v\n", msg.Data(), handled, err)
	}
}

// report stops the iterator (a no-op after release) and prints how many
// deliveries reached no handler.
func (s *source) report(ctx context.Context) {
	if s.it == nil {
		return
	}
	s.it.Stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := s.cons.Info(ctx)
	if err != nil {
		return
	}
	d := int64(info.Delivered.Consumer - s.delivered0)
	g := s.got.Load()
	fmt.Printf("stats delivered=%d got=%d dropped=%d\n", d, g, d-g)
}
