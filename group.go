package lameduck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Group makes one [Server] of several, so that they run under one [Runner]
// and share one lame-duck period: an HTTP front end and the worker it feeds,
// say.
//
// Serve runs every member's Serve at once. When one fails, the Group asks
// its Runner, through [Stop], to begin lame-duck mode: the pre-shutdown
// steps run (a readiness probe fails, a delay passes) and then Shutdown
// drains every member within the one period, so that a failed worker does
// not cut the front end's requests short. A member may also call Stop
// itself with the context its Serve got (a [Worker] does when a handler
// fails); the Group names the member in the cause. Serve returns the
// failures once every member's Serve has returned, each named
// "lameduck: Group: server <i>: ...", and nil when all of them returned nil.
// Without a Runner (Serve called directly) nobody would drain the others, so
// a failure before Shutdown closes them instead.
//
// List members in the order they depend on each other, as they would be
// started: a worker before the HTTP front end that feeds it. Shutdown shuts
// them down one after the other in reverse order, so the front end has
// stopped taking requests before the worker is drained. Every member gets
// the same context, and so the same deadline; an error does not stop the
// rest, and all errors are joined. Close closes every member.
//
// A member is known by its position, counting from 0 ("Group: server 1:
// listen tcp …"); give it a name with [Member] and its errors say that too
// ("Group: server 1 (api): listen tcp …").
//
// When members have a method Ready() <-chan struct{} (as [HTTPServer] has),
// so has the Group, closed once all of them are ready; a Runner waits for it.
//
// No members, a nil member, or one built from invalid input, makes NewRunner
// and Serve fail. A panic in a member's method is returned as an error.
func Group(servers ...Server) Server { return newGroup(false, servers) }

// ParallelGroup is like [Group] but its Shutdown shuts every member down at
// the same time, for members that do not depend on each other.
func ParallelGroup(servers ...Server) Server { return newGroup(true, servers) }

type group struct {
	name     string   // "Group" or "ParallelGroup"
	members  []Server // in the order given
	names    []string // members' names given with Member, "" for none
	parallel bool
	err      error // what was wrong with the members, if anything
	ready    chan struct{}
	life     lifecycle
}

func newGroup(parallel bool, servers []Server) *group {
	g := &group{name: "Group", members: make([]Server, len(servers)), names: make([]string, len(servers)), parallel: parallel, ready: make(chan struct{})}
	if parallel {
		g.name = "ParallelGroup"
	}
	for i, m := range servers {
		if n, ok := m.(*namedServer); ok && n != nil {
			g.names[i], m = n.name, n.Server
		}
		g.members[i] = m
	}
	if len(servers) == 0 {
		// An empty Group would return nil at once and look like a clean run.
		g.err = fmt.Errorf("lameduck: %s has no members", g.name)
	}
	for i, m := range g.members {
		if err := checkServer(m); err != nil {
			g.err = g.named(i, err)
			break
		}
	}
	return g
}

func (g *group) validate() error { return g.err }

// Ready returns a channel closed once every member is serving and every
// member with a Ready method is ready.
func (g *group) Ready() <-chan struct{} { return g.ready }

// fitDrain asks every member whether its settings fit in d.
func (g *group) fitDrain(d time.Duration) error {
	for i, m := range g.members {
		if err := fitDrain(m, d); err != nil {
			return g.named(i, err)
		}
	}
	return nil
}

// setCloseGrace passes the Runner's close grace on to every member.
func (g *group) setCloseGrace(d time.Duration) {
	for _, m := range g.members {
		giveCloseGrace(m, d)
	}
}

// Serve starts every member's Serve and waits for all of them to return.
// A stop that came before it does not keep it from starting them: each
// member knows from its own Shutdown or Close that it must not serve.
func (g *group) Serve(ctx context.Context) error {
	if g.err != nil {
		return g.err
	}
	if _, err := g.life.start(g.name + "'s Serve"); err != nil {
		return err
	}
	results, ready := g.startMembers(ctx)
	return g.awaitMembers(ctx, results, ready)
}

// startMembers starts every member's Serve. Each sends what it returned on
// results; ready follows the members' Ready channels.
func (g *group) startMembers(ctx context.Context) (results <-chan memberResult, ready *allReady) {
	c := make(chan memberResult, len(g.members))
	ready = &allReady{ready: g.ready}
	for i, m := range g.members {
		mctx := g.memberCtx(ctx, i)
		go func() { c <- memberResult{i, call("Serve", func() error { return m.Serve(mctx) })} }()
		if r, ok := m.(interface{ Ready() <-chan struct{} }); ok {
			ready.pending = append(ready.pending, r.Ready())
		}
	}
	return c, ready
}

// awaitMembers waits for every member's Serve to return, closing the
// Group's Ready channel on the way, and returns their failures. The first
// failure stops the others.
func (g *group) awaitMembers(ctx context.Context, results <-chan memberResult, ready *allReady) error {
	var errs []error
	closing := false
	for left := len(g.members); left > 0; {
		select {
		case <-ready.next():
			ready.seen()
		case r := <-results:
			left--
			if r.err == nil {
				continue
			}
			err := g.named(r.i, r.err)
			errs = append(errs, err)
			// A Runner drains the others gracefully. Without one nobody
			// would, unless Shutdown or Close has begun: close them.
			if !Stop(ctx, err) && !closing && g.life.phase() < phaseStopping {
				closing = true
				g.closeAllBut(r.i)
			}
		}
	}
	return joinErrors(errs...)
}

// memberResult is what member i's Serve returned.
type memberResult struct {
	i   int
	err error
}

// memberCtx is the context for member i's Serve: ctx, whose Stop names the
// member in the cause when ctx came from a Runner.
func (g *group) memberCtx(ctx context.Context, i int) context.Context {
	parent, _ := ctx.Value(stopKey{}).(stopper)
	if parent == nil {
		return ctx
	}
	return context.WithValue(ctx, stopKey{}, memberStopper{parent, g, i})
}

// closeAllBut closes every member but member i.
func (g *group) closeAllBut(i int) {
	for j, m := range g.members {
		if j != i {
			_ = call("Close", m.Close)
		}
	}
}

// allReady closes a Group's Ready channel once every member's has closed.
type allReady struct {
	pending []<-chan struct{} // members' Ready channels not yet seen closed
	ready   chan struct{}     // the Group's; nil once closed
}

// next returns the member's channel to wait on next. Once none is left, it
// closes the Group's and returns nil, a channel that never fires.
func (a *allReady) next() <-chan struct{} {
	if len(a.pending) > 0 {
		return a.pending[0]
	}
	if a.ready != nil {
		close(a.ready)
		a.ready = nil
	}
	return nil
}

// seen drops the channel next returned, which has closed.
func (a *allReady) seen() { a.pending = a.pending[1:] }

func (g *group) Shutdown(ctx context.Context) error {
	if g.err != nil {
		return g.err
	}
	g.life.stop(phaseStopping)
	errs := make([]error, len(g.members))
	shutdown := func(i int) {
		errs[i] = g.named(i, call("Shutdown", func() error { return g.members[i].Shutdown(ctx) }))
	}
	if g.parallel {
		var wg sync.WaitGroup
		for i := range g.members {
			wg.Go(func() { shutdown(i) })
		}
		wg.Wait()
	} else {
		for i := len(g.members) - 1; i >= 0; i-- {
			shutdown(i)
		}
	}
	return errors.Join(errs...)
}

func (g *group) Close() error {
	if g.err != nil {
		return g.err
	}
	g.life.stop(phaseClosed)
	var errs []error
	for i := len(g.members) - 1; i >= 0; i-- {
		errs = append(errs, g.named(i, call("Close", g.members[i].Close)))
	}
	return errors.Join(errs...)
}
