package lameduck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// This file checks the Runner against every order of events a schedule
// can describe: when Serve ends, how Shutdown and Close behave, when signals
// and a context cancellation arrive (also through a signal.NotifyContext
// context that the same signals cancel), what the pre-shutdown steps do,
// and, for a Group, when its second member fails and whether its Shutdown
// fails. An oracle written from CONTRACT.md, not from runner.go
// (schedule_oracle_test.go), says what Run must return and when.
//
// Times are multiples of 100ms plus a small offset that differs by kind of
// event (signals +1µs, cancel +2µs, Serve +3µs, Shutdown +4µs, steps +5µs,
// the member's failure +9µs, the period +12µs), so that no two events of
// different kinds ever fall on the same instant and the outcome is fully
// determined.

const never = time.Duration(math.MaxInt64)

type stepKind int

const (
	stepOK stepKind = iota
	stepErr
	stepSlow
	stepPanic
)

// serveMode is how the front server's Serve ends.
type serveMode int

const (
	serveUntilStopped serveMode = iota // returns nil once Shutdown or Close is called
	serveReturnsNil                    // returns nil at serveEnd (a batch job done)
	serveFails                         // returns errSchedServe at serveEnd
	servePanics                        // panics at serveEnd
)

// shutMode is how the front server's Shutdown behaves.
type shutMode int

const (
	shutDrains     shutMode = iota // returns nil after shutDur, or ctx's error first
	shutFails                      // returns errSchedShutdown after shutDur
	shutGivesUp                    // returns a wrapped DeadlineExceeded after shutDur
	shutIgnoresCtx                 // returns nil after shutDur, ignoring ctx; gives up when closed
	shutPanics                     // panics at once
)

// closeMode is how the front server's Close behaves.
type closeMode int

const (
	closeOK     closeMode = iota
	closeFails            // returns errSchedClose
	closePanics           // panics
	closeHangs            // never returns (until the test ends)
)

// notifyMode says whether signals also reach Run through its context, as
// with ctx from signal.NotifyContext for the same signals, and which of the
// two deliveries happens first.
type notifyMode int

const (
	notifyNone        notifyMode = iota
	notifySignalFirst            // Run's handler gets it, then the context ends
	notifyCtxFirst               // the context ends, then Run's handler gets it
)

type schedule struct {
	period   time.Duration
	signals  []time.Duration // when each SIGTERM arrives, from Run's start
	cancelAt time.Duration   // never: no cancellation
	serve    serveMode
	serveEnd time.Duration
	steps    []stepKind
	stepDur  []time.Duration // for stepSlow
	shut     shutMode
	shutDur  time.Duration
	close    closeMode

	notify notifyMode

	// group runs Group(member, front): the front is the server above; the
	// member serves until stopped, fails at memberFailAt, and its Shutdown
	// fails at once when memberShutFails.
	group           bool
	memberFailAt    time.Duration // never: it does not fail
	memberShutFails bool
}

// reader returns a function that takes the next byte of data modulo n, or 0
// once data is used up, so that every input decodes to something valid.
func reader(data []byte) func(n int) int {
	i := 0
	return func(n int) int {
		if i >= len(data) {
			return 0
		}
		v := int(data[i]) % n
		i++
		return v
	}
}

// decode turns fuzz bytes into a schedule; every input is a valid one.
// Fields decoded later were added later, so older seeds keep their meaning.
func decode(data []byte) schedule {
	next := reader(data)
	const unit = 100 * time.Millisecond
	s := schedule{period: time.Duration(1+next(8))*500*time.Millisecond + 12*time.Microsecond, cancelAt: never, memberFailAt: never}
	t := time.Duration(0)
	for range next(4) {
		t += time.Duration(1+next(20)) * unit
		s.signals = append(s.signals, t+time.Microsecond)
	}
	if next(2) == 1 {
		s.cancelAt = time.Duration(next(40))*unit + 2*time.Microsecond
	}
	s.serve = serveMode(next(4))
	s.serveEnd = time.Duration(next(40))*unit + 3*time.Microsecond
	for range next(4) {
		k := stepKind(next(4))
		s.steps = append(s.steps, k)
		s.stepDur = append(s.stepDur, time.Duration(1+next(30))*unit+5*time.Microsecond)
	}
	s.shut = shutMode(next(5))
	s.shutDur = time.Duration(next(40))*unit + 4*time.Microsecond
	s.close = closeMode(next(4))
	s.notify = notifyMode(next(3))
	if s.group = next(2) == 1; s.group {
		if next(2) == 1 {
			s.memberFailAt = time.Duration(next(40))*unit + 9*time.Microsecond
		}
		s.memberShutFails = next(2) == 1
	}
	// Something must end the run.
	endsItself := s.serve != serveUntilStopped
	if s.group {
		endsItself = s.serve == serveFails || s.serve == servePanics || s.memberFailAt != never
	}
	if len(s.signals) == 0 && s.cancelAt == never && !endsItself {
		s.cancelAt = unit + 2*time.Microsecond
	}
	return s
}

var (
	errSchedServe          = errors.New("sched: Serve failed")
	errSchedShutdown       = errors.New("sched: Shutdown failed")
	errSchedClose          = errors.New("sched: Close failed")
	errSchedMember         = errors.New("sched: member failed")
	errSchedMemberShutdown = errors.New("sched: member's Shutdown failed")
)

// schedServer acts out a schedule's front server.
type schedServer struct {
	s         schedule
	begin     time.Time
	stopped   chan struct{} // closed when Shutdown begins or Close does its work
	stopper   sync.Once
	release   chan struct{} // lets a Close that "never returns" go at the end
	closedC   chan struct{} // closed once Close has done its work
	closeOnce sync.Once

	mu                sync.Mutex
	shutdowns, closes int
}

func (v *schedServer) stop() { v.stopper.Do(func() { close(v.stopped) }) }

func (v *schedServer) Serve(ctx context.Context) error {
	var end <-chan time.Time
	if v.s.serve != serveUntilStopped {
		t := time.NewTimer(v.s.serveEnd - time.Since(v.begin))
		defer t.Stop()
		end = t.C
	}
	select {
	case <-end:
		switch v.s.serve {
		case serveFails:
			return errSchedServe
		case servePanics:
			panic("sched: Serve panicked")
		}
		return nil
	case <-v.stopped:
		return nil
	}
}

func (v *schedServer) Shutdown(ctx context.Context) error {
	v.mu.Lock()
	v.shutdowns++
	v.mu.Unlock()
	v.stop()
	if v.s.shut == shutPanics {
		panic("sched: Shutdown panicked")
	}
	t := time.NewTimer(v.s.shutDur)
	defer t.Stop()
	done := ctx.Done()
	var closed <-chan struct{}
	if v.s.shut == shutIgnoresCtx {
		done, closed = nil, v.closedC
	}
	select {
	case <-t.C:
		switch v.s.shut {
		case shutFails:
			return errSchedShutdown
		case shutGivesUp:
			return fmt.Errorf("sched: gave up: %w", context.DeadlineExceeded)
		}
		return nil
	case <-done:
		return ctx.Err()
	case <-closed:
		return errors.New("sched: closed during Shutdown")
	}
}

func (v *schedServer) Close() error {
	v.mu.Lock()
	v.closes++
	v.mu.Unlock()
	if v.s.close == closeHangs {
		<-v.release
	}
	v.stop()
	v.closeOnce.Do(func() { close(v.closedC) })
	switch v.s.close {
	case closeFails:
		return errSchedClose
	case closePanics:
		panic("sched: Close panicked")
	}
	return nil
}

// schedMember acts out the Group's other member: it serves until stopped
// or until it fails, and its Shutdown returns at once.
type schedMember struct {
	s       schedule
	begin   time.Time
	stopped chan struct{}
	once    sync.Once
}

func (m *schedMember) stop() { m.once.Do(func() { close(m.stopped) }) }

func (m *schedMember) Serve(context.Context) error {
	var fail <-chan time.Time
	if m.s.memberFailAt != never {
		t := time.NewTimer(m.s.memberFailAt - time.Since(m.begin))
		defer t.Stop()
		fail = t.C
	}
	select {
	case <-fail:
		return errSchedMember
	case <-m.stopped:
		return nil
	}
}

func (m *schedMember) Shutdown(context.Context) error {
	m.stop()
	if m.s.memberShutFails {
		return errSchedMemberShutdown
	}
	return nil
}

func (m *schedMember) Close() error { m.stop(); return nil }

// runSchedule runs s in a synctest bubble and checks Run against the oracle.
func runSchedule(t *testing.T, s schedule) expectation {
	t.Helper()
	want := s.oracle()
	synctest.Test(t, func(t *testing.T) {
		v := &schedServer{s: s, begin: time.Now(), stopped: make(chan struct{}), release: make(chan struct{}), closedC: make(chan struct{})}
		var svr Server = v
		if s.group {
			svr = Group(&schedMember{s: s, begin: v.begin, stopped: make(chan struct{})}, v)
		}
		sig := &fakeSignals{}
		var steps []func(context.Context) error
		for i, k := range s.steps {
			steps = append(steps, func(ctx context.Context) error {
				switch k {
				case stepErr:
					return errors.New("sched: step failed")
				case stepPanic:
					panic("sched: step panicked")
				case stepSlow:
					return Delay(s.stepDur[i])(ctx)
				}
				return nil
			})
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if s.cancelAt != never {
			time.AfterFunc(s.cancelAt, cancel)
		}
		senderDone := make(chan struct{})
		go func() {
			defer close(senderDone)
			for _, at := range s.signals {
				time.Sleep(at - time.Since(v.begin))
				// As with signal.NotifyContext and Run's own handler for
				// the same signal: one delivery reaches both.
				switch s.notify {
				case notifySignalFirst:
					sig.send(syscall.SIGTERM)
					cancel()
				case notifyCtxFirst:
					cancel()
					sig.send(syscall.SIGTERM)
				default:
					sig.send(syscall.SIGTERM)
				}
			}
		}()

		err := Run(ctx, svr, Period(s.period), withSignalSource(sig), WithoutLogger(), WithPreShutdown(steps...))
		at := time.Since(v.begin)
		close(v.release)
		<-senderDone

		describe := fmt.Sprintf("schedule %+v\noracle %+v\nRun returned at %v: %v", s, want, at, err)
		if at != want.at {
			t.Errorf("Run returned at %v, want %v\n%s", at, want.at, describe)
		}
		v.mu.Lock()
		shutdowns, closes := v.shutdowns, v.closes
		v.mu.Unlock()
		if shutdowns != want.shutdowns || closes != want.closes {
			t.Errorf("Shutdown called %d times and Close %d, want %d and %d\n%s", shutdowns, closes, want.shutdowns, want.closes, describe)
		}
		if sig.registered() != 0 || sig.stops != 1 {
			t.Errorf("signal handlers left: %d registered, %d Stop calls\n%s", sig.registered(), sig.stops, describe)
		}
		if msg := checkResult(want, err); msg != "" {
			t.Errorf("%s\n%s", msg, describe)
		}
	})
	return want
}

// checkResult compares Run's error with the oracle: its kind, and every
// error it holds against the wanted ones, one to one.
func checkResult(want expectation, err error) string {
	var lde *LameDuckError
	isLDE := errors.As(err, &lde)
	switch want.kind {
	case servedFirst, cleanDrain:
		if isLDE {
			return fmt.Sprintf("Run = %v, want no LameDuckError", err)
		}
	case expiredStop:
		if !isLDE || !lde.Expired || !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Sprintf("Run = %v, want an expired LameDuckError", err)
		}
		if lde.Forced != want.forced {
			return fmt.Sprintf("Run = %v: Forced = %v, want %v", err, lde.Forced, want.forced)
		}
	case failedStop:
		if !isLDE || lde.Expired {
			return fmt.Sprintf("Run = %v, want a LameDuckError for a failed Shutdown", err)
		}
	}
	got := leaves(err)
	if len(got) != len(want.errs) {
		return fmt.Sprintf("Run's result holds %d errors %q, want %d: %s", len(got), got, len(want.errs), descs(want.errs))
	}
	used := make([]bool, len(got))
next:
	for _, w := range want.errs {
		for i, g := range got {
			if !used[i] && w.match(g) {
				used[i] = true
				continue next
			}
		}
		return fmt.Sprintf("Run's result %q lacks %s", got, w.desc)
	}
	if want.exact {
		inner := err
		if isLDE {
			inner = lde.Err
		}
		if inner != got[0] {
			return fmt.Sprintf("Run = %#v, want exactly %v, not wrapped or joined", err, got[0])
		}
	}
	return ""
}

// leaves flattens Run's result into the errors it joins.
func leaves(err error) []error {
	var lde *LameDuckError
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, leaves(x)...)
		}
		return out
	default:
		if errors.As(err, &lde) && lde == err {
			return leaves(lde.Err)
		}
		return []error{err}
	}
}

func descs(ws []want) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.desc)
	}
	return strings.Join(out, "; ")
}

func FuzzSchedule(f *testing.F) {
	for _, seed := range [][]byte{
		{},                              // cancel at 100ms, clean drain
		{2, 1, 5},                       // one signal
		{0, 0, 0, 1, 2, 10},             // Serve returns nil before any trigger
		{0, 0, 0, 2, 2, 10},             // Serve fails first: Close, then its error
		{0, 0, 0, 3, 2, 10},             // Serve panics first
		{0, 2, 3, 4},                    // two signals: the second ends the period
		{1, 1, 3, 0, 0, 0, 0, 0, 39},    // Shutdown outlasts the period
		{1, 1, 3, 0, 0, 0, 0, 3, 39},    // ... while ignoring its ctx: its error after Close
		{1, 1, 3, 0, 0, 0, 0, 1, 2},     // Shutdown fails
		{1, 1, 3, 0, 0, 0, 0, 1, 2, 1},  // ... and so does Close
		{1, 1, 3, 0, 0, 0, 0, 4},        // Shutdown panics
		{1, 1, 3, 0, 0, 0, 0, 2, 5},     // Shutdown reports DeadlineExceeded early
		{0, 1, 3, 0, 0, 0, 0, 0, 39, 3}, // Close never returns
		{0, 1, 3, 0, 0, 0, 0, 0, 39, 2}, // Close panics
		{0, 1, 3, 0, 0, 0, 3, 2, 29, 1, 5, 3, 0, 0, 10},     // steps: slow, error, panic
		{0, 1, 3, 0, 0, 0, 2, 2, 29, 2, 29},                 // slow steps use up the period
		{3, 3, 2, 2, 2, 1, 7, 2, 9, 3, 1, 2, 4, 1, 0, 8, 2}, // a bit of everything
		{7, 2, 3, 5, 1, 20, 0, 0, 0, 0, 39, 0, 2},           // a NotifyContext ctx ends first, then two signals
		{7, 2, 3, 5, 0, 0, 0, 0, 0, 39, 0, 1},               // ... Run's handler first
		{1, 2, 5, 5, 1, 3, 0, 0, 0, 0, 39, 0, 0},            // cancel, then two signals: the first does not force
		{3, 0, 0, 0, 10, 0, 0, 10, 0, 0, 1, 1, 5, 0},        // Group: the member fails, the rest drains
		{3, 0, 0, 2, 5, 1, 2, 20, 0, 3, 0, 0, 1, 0, 1, 1},   // Group: the front fails; a slow step uses up the period, so no Shutdown
		{1, 1, 3, 0, 0, 0, 0, 0, 39, 0, 0, 1, 1, 20, 1},     // Group: the member's Shutdown fails after the period: still reported
		{1, 1, 3, 0, 0, 0, 0, 0, 39, 0, 0, 1, 1, 10, 0},     // Group: the member fails during a drain that expires
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runSchedule(t, decode(data))
	})
}

// TestScheduleStress runs many random schedules in plain `go test`, and
// reports how often each outcome came up so that a gap in coverage shows.
func TestScheduleStress(t *testing.T) {
	seen := map[string]int{}
	n := stress(t, 3000, 1, 28, func(data []byte) {
		s := decode(data)
		want := runSchedule(t, s)
		seen[string(want.kind)]++
		if want.forced {
			seen["forced"]++
		}
		if s.group {
			seen["group "+string(want.kind)]++
		}
		if s.notify != notifyNone {
			seen["notify"]++
		}
	})
	t.Logf("%d schedules: %v", n, seen)
	for _, k := range []string{"serve", "clean", "expired", "failed", "forced", "group clean", "group expired", "group failed", "notify"} {
		if seen[k] == 0 {
			t.Errorf("no schedule ended %q; the generator is too narrow", k)
		}
	}
}

// stress feeds n inputs of size random bytes (a tenth as many with -short)
// to run, stopping at the first failure with the bytes that caused it. The
// generator is seeded, so every run and machine sees the same inputs.
func stress(t *testing.T, n int, seed uint64, size int, run func(data []byte)) int {
	t.Helper()
	if testing.Short() {
		n /= 10
	}
	rng := newRand(seed)
	for i := range n {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng())
		}
		run(data)
		if t.Failed() {
			t.Fatalf("input %d failed; its bytes: %v", i, data)
		}
	}
	return n
}

// newRand is a small deterministic generator (xorshift), so that the
// stress schedules are the same on every run and machine.
func newRand(seed uint64) func() uint64 {
	x := seed*2654435761 + 1
	return func() uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
}
