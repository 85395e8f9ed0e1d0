package lameduck

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/b583c413/lameduck/internal/httpdrain"
)

// This file keeps what a Runner writes down for its Report as a stop goes
// on, and asks the Server for its work.

// workRow is one line of a Server's books: InFlight now; Done and Cut only
// grow from the Server's start. The Report turns them into what happened
// since lame-duck mode began.
type workRow struct {
	server, kind, proto string
	inFlight, done, cut int
	holding             int // of inFlight, what holds the drain up (not idle connections)
}

type workKey struct{ server, kind, proto string }

func (w workRow) key() workKey { return workKey{w.server, w.kind, w.proto} }

// workCounter is a Server that keeps books of its work: this package's
// adapters, and Groups and Members, which pass the question on.
type workCounter interface {
	countWork(add func(workRow), wait time.Duration)
}

// workReporter is a Server of another package that keeps books of its
// work, as the Report's documentation describes; lameduckgrpc's is one.
type workReporter interface {
	ReportWork(add func(kind, protocol string, inFlight, done, cut int))
}

// countWork returns svr's books, if it keeps any.
func countWork(svr Server, wait time.Duration) []workRow {
	var rows []workRow
	add := func(w workRow) { rows = append(rows, w) }
	switch c := svr.(type) {
	case workCounter:
		c.countWork(add, wait)
	case workReporter:
		reportWork(c, add, wait)
	}
	return rows
}

// reportWork asks r, code of another package, for its books. It is
// called on the stop's path (at the trigger, at the end of the period), so
// a ReportWork that panics or takes longer than wait is left out
// rather than allowed to stretch the period or end the process; one that
// never returns keeps only its own goroutine. Its rows are cleaned up:
// counts below zero are zero, an empty kind is "work", and rows of the
// same kind and protocol are added together.
func reportWork(r workReporter, add func(workRow), wait time.Duration) {
	got := make(chan []workRow, 1)
	go func() {
		var rows []workRow
		defer func() {
			if recover() != nil {
				rows = nil
			}
			got <- rows
		}()
		r.ReportWork(func(kind, protocol string, inFlight, done, cut int) {
			if kind == "" {
				kind = "work"
			}
			w := workRow{kind: kind, proto: protocol, inFlight: max(inFlight, 0), done: max(done, 0), cut: max(cut, 0)}
			w.holding = w.inFlight
			for i := range rows {
				if rows[i].key() == w.key() {
					rows[i].inFlight += w.inFlight
					rows[i].holding += w.holding
					rows[i].done += w.done
					rows[i].cut += w.cut
					return
				}
			}
			rows = append(rows, w)
		})
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case rows := <-got:
		for _, w := range rows {
			add(w)
		}
	case <-timer.C:
	}
}

// How long a ReportWork method may take. On the stop's path (at the
// trigger and when the period runs out) the wait comes out of the period,
// so it is short. A Report asked for otherwise (metrics, a post-shutdown
// step, the last log line) may wait longer: a ReportWork that only reads
// its books returns within microseconds, but on a loaded machine its
// goroutine may wait tens of milliseconds to run (50 ms left
// lameduckhttp3's rows out under the race detector at load 4).
const (
	stopPathWait = 50 * time.Millisecond
	reportWait   = 250 * time.Millisecond
)

// countWork passes the question on to the gRPC server it bounds, when that
// keeps books (lameduckgrpc's streams do).
func (g *grpcServer) countWork(add func(workRow), wait time.Duration) {
	if r, ok := g.s.(workReporter); ok {
		reportWork(r, add, wait)
	}
}

// countWork passes the question on to the members, each row named by the
// member's name (or its position) in front of what the member named.
func (g *group) countWork(add func(workRow), wait time.Duration) {
	for i, m := range g.members {
		name := g.names[i]
		if name == "" {
			name = fmt.Sprintf("server %d", i) // numbered as in errors: "Group: server 0"
		}
		for _, w := range countWork(m, wait) {
			if w.server != "" {
				w.server = name + "/" + w.server
			} else {
				w.server = name
			}
			add(w)
		}
	}
}

func (n *namedServer) countWork(add func(workRow), wait time.Duration) {
	for _, w := range countWork(n.Server, wait) {
		if w.server == "" {
			w.server = n.name
		}
		add(w)
	}
}

// countWork reads the tracker's books.
func (h *HTTPServer) countWork(add func(workRow), wait time.Duration) {
	c := h.tracker.Counts()
	protos := []string{httpdrain.HTTP1: "HTTP/1", httpdrain.HTTP2: "HTTP/2", httpdrain.Taken: "hijacked"}
	for p, n := range c.Requests {
		add(workRow{kind: "requests", proto: protos[p], inFlight: n.InFlight, holding: n.Holding, done: n.Done, cut: n.Cut})
	}
	for p, n := range c.Conns {
		add(workRow{kind: "connections", proto: protos[p], inFlight: n.InFlight, holding: n.Holding, done: n.Done, cut: n.Cut})
	}
}

// closingTeller is a Server that wants to know Close is coming before Run
// cancels Serve's context, which ends the handlers' contexts too: its books
// then count what ends from that moment on as cut, not as finished.
type closingTeller interface{ closing() }

// tellClosing tells svr, and a Group's members, that Close is coming.
func tellClosing(svr Server) {
	if c, ok := svr.(closingTeller); ok {
		c.closing()
	}
}

func (g *group) closing() {
	for _, m := range g.members {
		tellClosing(m)
	}
}

func (n *namedServer) closing() { tellClosing(n.Server) }

// closing moves the server to closed, as Close is about to: the tracker
// counts what is in flight as cut.
func (h *HTTPServer) closing() {
	if h.validate() == nil {
		h.stop(phaseClosed)
	}
}

func (w *Worker[T]) closing() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loop != nil {
		w.loop.Cutting()
	}
}

// phaseRec is one phase of the stop as the Runner saw it.
type phaseRec struct {
	name       func() string // asked when the report is made: a step's name is known once it runs
	start, end time.Time     // end is zero while it runs
	err        error
}

// book is what the Runner writes down for its Report; guarded by mu.
type book struct {
	mu              sync.Mutex
	trigger, cause  string
	began, returned time.Time
	ended           time.Time // the drain (and Close) was over: the post-shutdown steps are not the stop's Took
	outcome         string
	phases          []*phaseRec
	base            map[workKey]workRow // the books when lame-duck mode began
	held            map[workKey]workRow // the books when the period ran out
}

// noteTrigger writes down what began lame-duck mode, and the books then.
func (ru *run) noteTrigger(trigger, cause string, at time.Time) {
	rows := countWork(ru.r.svr, stopPathWait)
	b := &ru.r.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trigger, b.cause, b.began = trigger, cause, at
	b.base = byKey(rows)
}

// noteHeld writes down the books as the period runs out.
func (ru *run) noteHeld() {
	rows := countWork(ru.r.svr, stopPathWait)
	b := &ru.r.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = byKey(rows)
}

func byKey(rows []workRow) map[workKey]workRow {
	m := make(map[workKey]workRow, len(rows))
	for _, w := range rows {
		m[w.key()] = w
	}
	return m
}

// timed runs f as a phase of the stop named name(), and writes it down.
func (ru *run) timed(name func() string, f func() error) error {
	p := &phaseRec{name: name, start: time.Now()}
	b := &ru.r.book
	b.mu.Lock()
	b.phases = append(b.phases, p)
	b.mu.Unlock()
	var err error
	defer func() {
		b.mu.Lock()
		p.end, p.err = time.Now(), err
		b.mu.Unlock()
	}()
	err = f()
	return err
}

// noteOutcome writes down how Run is ending, given what it returns.
func (ru *run) noteOutcome(err error) {
	outcome := "clean"
	var lde *LameDuckError
	switch {
	case errors.As(err, &lde) && lde.Forced:
		outcome = "forced"
	case errors.As(err, &lde) && lde.Expired:
		outcome = "expired"
	case err != nil:
		outcome = "failed"
	}
	b := &ru.r.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.outcome = outcome
	if b.ended.IsZero() {
		b.ended = time.Now()
	}
}

// noteReturn writes down when Run returned: Took stops there.
func (ru *run) noteReturn() {
	b := &ru.r.book
	b.mu.Lock()
	defer b.mu.Unlock()
	b.returned = time.Now()
}

// Report returns what the Runner knows now of its Server's work and of its
// stop; see [Report]. It is safe to call from any goroutine, at any time:
// during the stop it says how far the drain has gone, and once Run has
// returned it is the stop's final account. A post-shutdown step can push
// it (to a metrics gateway, say) before the process exits: by then its
// Outcome is set, and only the post-shutdown phases are still to come.
func (r *Runner) Report() Report {
	if r == nil {
		return Report{}
	}
	rows := countWork(r.svr, reportWait)
	rep := Report{State: r.State(), Period: r.cfg.period}
	b := &r.book
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	rep.Trigger, rep.Cause, rep.Began, rep.Outcome = b.trigger, b.cause, b.began, b.outcome
	if !b.began.IsZero() {
		end := now
		if !b.ended.IsZero() {
			end = b.ended
		}
		rep.Took = end.Sub(b.began)
	}
	for _, p := range b.phases {
		end, running := p.end, p.end.IsZero()
		if running {
			end = now
			if !b.returned.IsZero() {
				end = b.returned
			}
		}
		rep.Phases = append(rep.Phases, struct {
			Name    string
			Took    time.Duration
			Err     error
			Running bool
		}{p.name(), end.Sub(p.start), p.err, running})
	}
	for _, w := range rows {
		base := b.base[w.key()]
		row := struct {
			Server, Kind, Protocol string
			InFlight, AtLameDuck   int
			Finished, Cut, Held    int
		}{Server: w.server, Kind: w.kind, Protocol: w.proto, InFlight: w.inFlight}
		if b.base != nil { // lame-duck mode has begun
			row.AtLameDuck = base.inFlight
			row.Finished = max(w.done-base.done, 0)
			row.Cut = w.cut - base.cut
			row.Held = b.held[w.key()].holding
		}
		rep.Work = append(rep.Work, row)
	}
	return rep
}

// countWork reads the loop's books: the items of the running Serve.
func (w *Worker[T]) countWork(add func(workRow), wait time.Duration) {
	w.mu.Lock()
	loop := w.loop
	w.mu.Unlock()
	row := workRow{kind: "items"}
	if loop != nil {
		c := loop.Counts()
		row.inFlight, row.done, row.cut = c.InHandle, c.Handled, c.Cut
		row.holding = c.InHandle
	}
	add(row)
}
