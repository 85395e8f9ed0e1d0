package lameduck

import (
	"errors"
	"fmt"
	"time"
)

// This file holds how a Group's member is named: by its position, and by the
// name given with Member, in its errors and in the causes its Stop reports.

// named names member i in err, whatever err is: one the member returned,
// a panic recovered here or inside the member (a Worker's handler), or a
// nested Group's.
func (g *group) named(i int, err error) error {
	if err == nil {
		return nil
	}
	return &memberError{i: i, name: g.names[i], err: err}
}

// memberError is the error of a Group's member, named by its position and
// by the name given with Member, if any.
type memberError struct {
	i    int
	name string
	err  error
}

func (e *memberError) Error() string {
	return fmt.Sprintf("lameduck: %s: %s", e.label(), message(e.err))
}

// label names the member: "Group: server 1", or "Group: server 1 (api)".
func (e *memberError) label() string {
	if e.name != "" {
		return fmt.Sprintf("Group: server %d (%s)", e.i, e.name)
	}
	return fmt.Sprintf("Group: server %d", e.i)
}

func (e *memberError) Unwrap() error { return e.err }

// Is reports whether target is the same member's error for the same
// failure, so that a failure a member reported through Stop and then
// returned from Serve is told once.
func (e *memberError) Is(target error) bool {
	t, ok := target.(*memberError)
	return ok && t.i == e.i && errors.Is(e.err, t.err)
}

// memberStopper is what a member's Serve context carries for Stop: it names
// the member in the cause and passes the request on to the Runner.
type memberStopper struct {
	parent stopper
	g      *group
	i      int
}

func (m memberStopper) requestStop(cause error) bool {
	return m.parent.requestStop(m.g.named(m.i, cause))
}

// Member names svr for the [Group] or [ParallelGroup] it is given to, so
// that errors and the Runner's log say "server 1 (api)" rather than only
// "server 1". Outside a Group it behaves exactly like svr.
func Member(name string, svr Server) Server {
	return &namedServer{name: name, Server: svr}
}

// namedServer is what Member returns; a Group takes it apart again.
type namedServer struct {
	name string
	Server
}

func (n *namedServer) validate() error {
	if err := checkServer(n.Server); err != nil {
		return fmt.Errorf("lameduck: Member %q: %s", n.name, message(err))
	}
	return nil
}

// fitDrain passes NewRunner's question on to the named Server.
func (n *namedServer) fitDrain(d time.Duration) error { return fitDrain(n.Server, d) }

// setCloseGrace passes the Runner's close grace on to the named Server.
func (n *namedServer) setCloseGrace(d time.Duration) { giveCloseGrace(n.Server, d) }

// Ready is the named Server's own Ready, or a closed channel for a Server
// without one, which is the same to a Runner or a Group: ready once Serve
// has started.
func (n *namedServer) Ready() <-chan struct{} {
	if r, ok := n.Server.(interface{ Ready() <-chan struct{} }); ok {
		return r.Ready()
	}
	return closedChan
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
