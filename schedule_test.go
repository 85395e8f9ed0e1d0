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
// and a context cancellation arrive, and what the pre-shutdown steps do.
// An oracle written from SPEC.md, not from runner.go, says what Run must
// return and when.
//
// Times are multiples of 100ms plus a small offset that differs by kind of
// event (signals +1µs, cancel +2µs, Serve +3µs, Shutdown +4µs, steps +5µs),
// so that no two events of different kinds ever fall on the same instant
// and the outcome is fully determined.

const never = time.Duration(math.MaxInt64)

type stepKind int

const (
	stepOK stepKind = iota
	stepErr
	stepSlow
	stepPanic
)

type schedule struct {
	period    time.Duration
	signals   []time.Duration // when each SIGTERM arrives, from Run's start
	cancelAt  time.Duration   // never: no cancellation
	serveMode int             // 0: until stopped, 1: returns nil, 2: fails, 3: panics (at serveEnd)
	serveEnd  time.Duration
	steps     []stepKind
	stepDur   []time.Duration // for stepSlow
	shutMode  int             // 0: nil after, 1: error after, 2: DeadlineExceeded after, 3: ignores ctx, 4: panics
	shutDur   time.Duration
	closeMode int // 0: nil, 1: error, 2: panics, 3: never returns (until the test ends)
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
func decode(data []byte) schedule {
	next := reader(data)
	const unit = 100 * time.Millisecond
	s := schedule{period: time.Duration(1+next(8)) * 500 * time.Millisecond, cancelAt: never}
	t := time.Duration(0)
	for range next(4) {
		t += time.Duration(1+next(20)) * unit
		s.signals = append(s.signals, t+time.Microsecond)
	}
	if next(2) == 1 {
		s.cancelAt = time.Duration(next(40))*unit + 2*time.Microsecond
	}
	s.serveMode = next(4)
	s.serveEnd = time.Duration(next(40))*unit + 3*time.Microsecond
	for range next(4) {
		k := stepKind(next(4))
		s.steps = append(s.steps, k)
		s.stepDur = append(s.stepDur, time.Duration(1+next(30))*unit+5*time.Microsecond)
	}
	s.shutMode = next(5)
	s.shutDur = time.Duration(next(40))*unit + 4*time.Microsecond
	s.closeMode = next(4)
	if len(s.signals) == 0 && s.cancelAt == never && s.serveMode == 0 {
		s.cancelAt = unit + 2*time.Microsecond // something must end the run
	}
	return s
}

var (
	errSchedServe    = errors.New("sched: Serve failed")
	errSchedShutdown = errors.New("sched: Shutdown failed")
	errSchedClose    = errors.New("sched: Close failed")
)

// expectation is what the oracle predicts.
type expectation struct {
	kind      string        // "serve", "clean", "expired", "failed"
	serveErr  string        // for "serve" and "clean": "", "error" or "panic"
	at        time.Duration // when Run returns, from its start
	shutdowns int
	closes    int
}

func (s schedule) oracle() expectation {
	serveResult := []string{"", "", "error", "panic"}[s.serveMode]
	S := never
	if s.serveMode != 0 {
		S = s.serveEnd
	}
	// Semantic 2: the first signal or the cancellation begins lame-duck mode.
	T := s.cancelAt
	if len(s.signals) > 0 && s.signals[0] < T {
		T = s.signals[0]
	}
	// Semantics 8 and 9: Serve ending first ends Run, with no lame-duck.
	if S < T {
		return expectation{kind: "serve", serveErr: serveResult, at: S}
	}
	// Semantics 3, 5 and 7: the period ends at T+period, or at the next
	// signal after T, whichever is first.
	F := T + s.period
	for _, sig := range s.signals {
		if sig > T {
			F = min(F, sig)
			break
		}
	}
	grace := time.Duration(0)
	if s.closeMode == 3 {
		grace = closeGrace
	}
	expired := expectation{kind: "expired", at: F + grace, closes: 1}

	// The steps run one after another; a slow one is cut short at F.
	t := T
	for i, k := range s.steps {
		if t >= F {
			break
		}
		if k == stepSlow {
			t = min(t+s.stepDur[i], F)
		}
	}
	E := t
	if E >= F {
		return expired // Shutdown is never called
	}
	expired.shutdowns = 1
	// Serve's own result counts if it came during the steps; once Shutdown
	// begins, this Serve returns nil.
	duringDrain := ""
	if S < E {
		duringDrain = serveResult
	}
	if s.shutMode == 4 {
		return expectation{kind: "failed", at: E + grace, shutdowns: 1, closes: 1}
	}
	R := E + s.shutDur
	if R >= F {
		return expired
	}
	switch s.shutMode {
	case 1:
		return expectation{kind: "failed", at: R + grace, shutdowns: 1, closes: 1}
	case 2:
		expired.at = R + grace
		return expired
	}
	return expectation{kind: "clean", serveErr: duringDrain, at: R, shutdowns: 1}
}

// schedServer acts out a schedule's Server.
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
	if v.s.serveMode != 0 {
		t := time.NewTimer(v.s.serveEnd - time.Since(v.begin))
		defer t.Stop()
		end = t.C
	}
	select {
	case <-end:
		switch v.s.serveMode {
		case 2:
			return errSchedServe
		case 3:
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
	if v.s.shutMode == 4 {
		panic("sched: Shutdown panicked")
	}
	t := time.NewTimer(v.s.shutDur)
	defer t.Stop()
	done := ctx.Done()
	if v.s.shutMode == 3 {
		done = nil
	}
	select {
	case <-t.C:
		switch v.s.shutMode {
		case 1:
			return errSchedShutdown
		case 2:
			return fmt.Errorf("sched: gave up: %w", context.DeadlineExceeded)
		}
		return nil
	case <-done:
		return ctx.Err()
	case <-v.closedForShutdown():
		return errors.New("sched: closed during Shutdown")
	}
}

// closedForShutdown is the channel an ctx-ignoring Shutdown watches: it
// closes when Close has done its work.
func (v *schedServer) closedForShutdown() <-chan struct{} {
	if v.s.shutMode != 3 {
		return nil
	}
	return v.closedC
}

func (v *schedServer) Close() error {
	v.mu.Lock()
	v.closes++
	v.mu.Unlock()
	if v.s.closeMode == 3 {
		<-v.release
	}
	v.stop()
	v.closeOnce.Do(func() { close(v.closedC) })
	switch v.s.closeMode {
	case 1:
		return errSchedClose
	case 2:
		panic("sched: Close panicked")
	}
	return nil
}

// runSchedule runs s in a synctest bubble and checks Run against the oracle.
func runSchedule(t *testing.T, s schedule) expectation {
	t.Helper()
	want := s.oracle()
	synctest.Test(t, func(t *testing.T) {
		v := &schedServer{s: s, begin: time.Now(), stopped: make(chan struct{}), release: make(chan struct{}), closedC: make(chan struct{})}
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
				sig.send(syscall.SIGTERM)
			}
		}()

		err := Run(ctx, v, Period(s.period), withSignalSource(sig), WithoutLogger(), WithPreShutdown(steps...))
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
		if msg := checkResult(want, s, err); msg != "" {
			t.Errorf("%s\n%s", msg, describe)
		}
	})
	return want
}

func checkResult(want expectation, s schedule, err error) string {
	var lde *LameDuckError
	isLDE := errors.As(err, &lde)
	stuck := err != nil && strings.Contains(err.Error(), "did not return within")
	serveErrOK := func() bool {
		switch want.serveErr {
		case "":
			return err == nil
		case "error":
			return err == errSchedServe // unwrapped, semantic 8
		default:
			return err != nil && strings.Contains(err.Error(), "Serve panicked") && !isLDE
		}
	}
	switch want.kind {
	case "serve", "clean":
		if !serveErrOK() {
			return fmt.Sprintf("Run = %v, want Serve's result %q", err, want.serveErr)
		}
	case "expired":
		if !isLDE || !lde.Expired || !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Sprintf("Run = %v, want an expired LameDuckError", err)
		}
		if msg := checkClose(s, lde.Err, stuck); msg != "" {
			return msg
		}
	case "failed":
		if !isLDE || lde.Expired {
			return fmt.Sprintf("Run = %v, want a LameDuckError for a failed Shutdown", err)
		}
		if s.shutMode == 1 && !errors.Is(err, errSchedShutdown) {
			return fmt.Sprintf("Run = %v, want it to wrap Shutdown's error", err)
		}
		if s.shutMode == 4 && !strings.Contains(err.Error(), "Shutdown panicked") {
			return fmt.Sprintf("Run = %v, want Shutdown's panic", err)
		}
		if s.closeMode == 1 && !errors.Is(err, errSchedClose) {
			return fmt.Sprintf("Run = %v, want Close's error joined in", err)
		}
	}
	return ""
}

func checkClose(s schedule, closeErr error, stuck bool) string {
	switch s.closeMode {
	case 0:
		if closeErr != nil {
			return fmt.Sprintf("Err = %v, want nil (Close succeeded)", closeErr)
		}
	case 1:
		if !errors.Is(closeErr, errSchedClose) {
			return fmt.Sprintf("Err = %v, want Close's error", closeErr)
		}
	case 2:
		if closeErr == nil || !strings.Contains(closeErr.Error(), "Close panicked") {
			return fmt.Sprintf("Err = %v, want Close's panic", closeErr)
		}
	case 3:
		if !stuck {
			return fmt.Sprintf("Err = %v, want one saying Close did not return", closeErr)
		}
	}
	return ""
}

func FuzzSchedule(f *testing.F) {
	for _, seed := range [][]byte{
		{},                              // cancel at 100ms, clean drain
		{2, 1, 5},                       // one signal
		{0, 0, 0, 1, 2, 10},             // Serve returns nil before any trigger
		{0, 0, 0, 2, 2, 10},             // Serve fails first
		{0, 0, 0, 3, 2, 10},             // Serve panics first
		{0, 2, 3, 4},                    // two signals: the second ends the period
		{1, 1, 3, 0, 0, 0, 0, 0, 39},    // Shutdown outlasts the period
		{1, 1, 3, 0, 0, 0, 0, 3, 39},    // ... while ignoring its ctx
		{1, 1, 3, 0, 0, 0, 0, 1, 2},     // Shutdown fails
		{1, 1, 3, 0, 0, 0, 0, 1, 2, 1},  // ... and so does Close
		{1, 1, 3, 0, 0, 0, 0, 4},        // Shutdown panics
		{1, 1, 3, 0, 0, 0, 0, 2, 5},     // Shutdown reports DeadlineExceeded early
		{0, 1, 3, 0, 0, 0, 0, 0, 39, 3}, // Close never returns
		{0, 1, 3, 0, 0, 0, 0, 0, 39, 2}, // Close panics
		{0, 1, 3, 0, 0, 0, 3, 2, 29, 1, 5, 3, 0, 0, 10},     // steps: slow, error, panic
		{0, 1, 3, 0, 0, 0, 2, 2, 29, 2, 29},                 // slow steps use up the period
		{3, 3, 2, 2, 2, 1, 7, 2, 9, 3, 1, 2, 4, 1, 0, 8, 2}, // a bit of everything
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
	kinds := map[string]int{}
	n := stress(t, 3000, 1, 24, func(data []byte) {
		kinds[runSchedule(t, decode(data)).kind]++
	})
	t.Logf("%d schedules: %v", n, kinds)
	for _, k := range []string{"serve", "clean", "expired", "failed"} {
		if kinds[k] == 0 {
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
