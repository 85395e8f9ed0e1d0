package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// The tests' WebSocket clients: real clients of both libraries behind one
// small interface, so that every scenario runs with each.

// clientLib names a client library.
type clientLib string

const (
	coderLib   clientLib = "coder"
	gorillaLib clientLib = "gorilla"
)

var clientLibs = []clientLib{coderLib, gorillaLib}

// wsConn is one client connection. send and recv may be called from two
// goroutines at once (one each); finish and abort from any.
type wsConn interface {
	send(msg string) error
	// recv returns the next message, or an error for the end of the
	// connection, whose close code closeCode finds.
	recv(timeout time.Duration) (string, error)
	finish() // a normal closure (1000), with the handshake
	abort()  // close the socket, no handshake
}

// abnormal is the close code a client reports for a connection that ended
// without a close frame (RFC 6455's 1006).
const abnormal = 1006

// closeCode returns the status of the close frame that ended a connection,
// from the error recv returned, or abnormal when none came.
func closeCode(err error) int {
	var ge *gorilla.CloseError
	if errors.As(err, &ge) {
		return ge.Code
	}
	if c := coder.CloseStatus(err); c != -1 {
		return int(c)
	}
	return abnormal
}

// dialWS opens a connection with lib's client.
func dialWS(ctx context.Context, lib clientLib, url string) (wsConn, error) {
	switch lib {
	case coderLib:
		c, _, err := coder.Dial(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		return &coderConn{c: c}, nil
	case gorillaLib:
		c, _, err := gorilla.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		return &gorillaConn{c: c}, nil
	}
	return nil, fmt.Errorf("no client library %q", lib)
}

type coderConn struct{ c *coder.Conn }

func (c *coderConn) send(msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return c.c.Write(ctx, coder.MessageText, []byte(msg))
}

// recv reads with a context that ends after timeout; coder/websocket then
// closes the connection, which recv reports as abnormal.
func (c *coderConn) recv(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	return string(b), err
}

func (c *coderConn) finish() { c.c.Close(coder.StatusNormalClosure, "") }
func (c *coderConn) abort()  { c.c.CloseNow() }

// gorillaConn is a gorilla/websocket client. Its default close handler
// answers the server's close frame with its own; the socket is then closed
// by abort.
type gorillaConn struct{ c *gorilla.Conn }

func (c *gorillaConn) send(msg string) error {
	c.c.SetWriteDeadline(time.Now().Add(bound))
	return c.c.WriteMessage(gorilla.TextMessage, []byte(msg))
}

func (c *gorillaConn) recv(timeout time.Duration) (string, error) {
	c.c.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := c.c.ReadMessage()
	return string(b), err
}

func (c *gorillaConn) finish() {
	msg := gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, "")
	if c.c.WriteControl(gorilla.CloseMessage, msg, time.Now().Add(time.Second)) == nil {
		// The server answers; its close frame is the last thing to read.
		for {
			if _, err := c.recv(time.Second); err != nil {
				break
			}
		}
	}
	c.c.Close()
}

func (c *gorillaConn) abort() { c.c.Close() }

// recvAck returns the next acknowledgement on c, skipping what the chat
// sends on from other clients.
func recvAck(c wsConn, timeout time.Duration) (string, error) {
	for {
		msg, err := c.recv(timeout)
		if err != nil || strings.HasPrefix(msg, "ack ") {
			return msg, err
		}
	}
}
