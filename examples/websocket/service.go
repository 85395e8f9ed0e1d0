package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/b583c413/lameduck"
)

// service holds what the handlers share.
type service struct {
	ledger    *ledger
	hub       *hub
	closeWait time.Duration // how long a closing handshake may take
}

func newService(name string, records io.Writer, closeWait time.Duration) *service {
	return &service{
		ledger:    &ledger{name: name, w: records},
		hub:       &hub{clients: map[*chatClient]struct{}{}},
		closeWait: closeWait,
	}
}

func (s *service) routes(ready *lameduck.Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", s.echo)
	mux.HandleFunc("GET /chat", s.chat)
	mux.Handle("GET /readyz", ready)
	return mux
}

// ledger records each message the service takes, before the message is
// acknowledged: once a client holds an acknowledgement, the message is on
// record.
type ledger struct {
	name string
	mu   sync.Mutex
	w    io.Writer
}

// take records msg, from client, and returns the acknowledgement to send;
// it fails when the record could not be written, and then nothing may be
// acknowledged.
func (l *ledger) take(client string, msg []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.w, "ledger %s %q %q\n", l.name, client, msg); err != nil {
		return nil, err
	}
	return append([]byte("ack "), msg...), nil
}
