package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{}

// writeWait bounds each write to a chat client.
const writeWait = 5 * time.Second

// hub holds the chat's clients.
type hub struct {
	mu      sync.Mutex
	clients map[*chatClient]struct{}
}

// chatClient is one connection to /chat. Its read pump and write pump
// outlive the handler, as in gorilla/websocket's chat example: the handler
// returns once they have started.
type chatClient struct {
	c    *websocket.Conn
	name string
	send chan []byte   // to the write pump
	gone chan struct{} // closed when the write pump has stopped
}

// chat serves /chat with github.com/gorilla/websocket.
func (s *service) chat(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the request
	}
	cl := &chatClient{c: c, name: r.URL.Query().Get("client"), send: make(chan []byte, 64), gone: make(chan struct{})}
	s.hub.join(cl)
	readDone := make(chan struct{})
	// The request's context is cancelled when the handler returns, but the
	// channel Draining returns for it stays good.
	draining := lameduck.Draining(r.Context())
	go s.readPump(cl, readDone)
	go s.writePump(cl, draining, readDone)
}

// readPump records and acknowledges each message, and sends it on to the
// other clients, until the connection fails or the client's close frame
// arrives; then it closes readDone.
func (s *service) readPump(cl *chatClient, readDone chan<- struct{}) {
	defer close(readDone)
	defer s.hub.leave(cl)
	for {
		_, msg, err := cl.c.ReadMessage()
		if err != nil {
			glog.V(1).Infof("chat %s: %v", cl.name, err)
			return
		}
		ack, err := s.ledger.take(cl.name, msg)
		if err != nil {
			return // nothing may be acknowledged; closing tells the client
		}
		if !cl.deliver(ack) {
			return
		}
		s.hub.broadcast(cl, append([]byte("from "+cl.name+": "), msg...))
	}
}

// writePump writes what is sent to the client until the reader stops or
// the drain reaches the connection; then it closes the connection, after
// the closing handshake in the second case.
func (s *service) writePump(cl *chatClient, draining <-chan struct{}, readDone <-chan struct{}) {
	defer close(cl.gone)
	for {
		select {
		case msg := <-cl.send:
			cl.c.SetWriteDeadline(time.Now().Add(writeWait))
			if err := cl.c.WriteMessage(websocket.TextMessage, msg); err != nil {
				cl.c.Close()
				return
			}
		case <-readDone:
			cl.c.Close()
			return
		case <-draining:
			goingAway(cl.c, readDone, s.closeWait)
			return
		}
	}
}

// goingAway sends c a close frame with status 1001, "going away", and waits
// for the client's close frame, for at most wait; then it closes c. The
// client's answer arrives through the connection's one reader, which
// returns it from ReadMessage as a *websocket.CloseError and stops:
// readDone must be closed once that reader has stopped. gorilla/websocket
// allows WriteControl beside one reader and one writer; call goingAway from
// the writer's goroutine, so that nothing is written after the close frame.
func goingAway(c *websocket.Conn, readDone <-chan struct{}, wait time.Duration) {
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server going away")
	if c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)) == nil {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-readDone:
		case <-t.C: // no answer: closing ends the reader's wait
		}
	}
	c.Close()
}

// deliver queues msg for the client, or reports false when its write pump
// has stopped.
func (cl *chatClient) deliver(msg []byte) bool {
	select {
	case cl.send <- msg:
		return true
	case <-cl.gone:
		return false
	}
}

func (h *hub) join(cl *chatClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[cl] = struct{}{}
}

func (h *hub) leave(cl *chatClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, cl)
}

// broadcast sends msg to every client but from, skipping those whose queue
// is full rather than letting one slow client hold up the rest.
func (h *hub) broadcast(from *chatClient, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		if cl == from {
			continue
		}
		select {
		case cl.send <- msg:
		default:
		}
	}
}
