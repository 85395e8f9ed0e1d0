package lameduck

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSignals stands in for os/signal: tests deliver signals by calling send.
type fakeSignals struct {
	mu       sync.Mutex
	chans    []chan<- os.Signal
	notified [][]os.Signal // the arguments of every Notify call
	stops    int
}

func (f *fakeSignals) Notify(c chan<- os.Signal, sigs ...os.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chans = append(f.chans, c)
	f.notified = append(f.notified, sigs)
}

func (f *fakeSignals) Stop(c chan<- os.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops++
	f.chans = slices.DeleteFunc(f.chans, func(x chan<- os.Signal) bool { return x == c })
}

// send delivers sig the way os/signal does: without blocking, to every
// channel still registered.
func (f *fakeSignals) send(sig os.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.chans {
		select {
		case c <- sig:
		default:
		}
	}
}

func (f *fakeSignals) registered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.chans)
}

func withSignalSource(src signalSource) Option {
	return optionFunc(func(c *config) error {
		c.source = src
		return nil
	})
}

// recLogger records every line logged.
type recLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLogger) Infof(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *recLogger) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// fakeServer behaves like http.Server: Serve blocks until Shutdown or Close
// is called, Shutdown takes drain (of bubble time) to finish its work, and
// Close makes both return at once. Fields set before Run configure it.
type fakeServer struct {
	drain       time.Duration // how long Shutdown's work takes
	ignoreCtx   bool          // Shutdown keeps working past its context's end
	shutdownErr error         // returned by Shutdown after its work
	closeErr    error         // returned by Close
	serveErr    error         // returned by Serve when it stops

	stopped chan struct{} // closed by the first Shutdown or Close
	closed  chan struct{} // closed by Close
	once    sync.Once
	cOnce   sync.Once

	mu       sync.Mutex
	calls    []string
	serveCtx context.Context
	drainCtx context.Context
}

func newFakeServer() *fakeServer {
	return &fakeServer{stopped: make(chan struct{}), closed: make(chan struct{})}
}

func (s *fakeServer) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *fakeServer) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *fakeServer) Serve(ctx context.Context) error {
	s.record("Serve")
	s.mu.Lock()
	s.serveCtx = ctx
	s.mu.Unlock()
	<-s.stopped
	return s.serveErr
}

func (s *fakeServer) Shutdown(ctx context.Context) error {
	s.record("Shutdown")
	s.mu.Lock()
	s.drainCtx = ctx
	s.mu.Unlock()
	s.once.Do(func() { close(s.stopped) })
	work := time.NewTimer(s.drain)
	defer work.Stop()
	done := ctx.Done()
	if s.ignoreCtx {
		done = nil
	}
	select {
	case <-work.C:
		return s.shutdownErr
	case <-done:
		return ctx.Err()
	case <-s.closed:
		return fmt.Errorf("fake: closed during Shutdown")
	}
}

func (s *fakeServer) Close() error {
	s.record("Close")
	s.once.Do(func() { close(s.stopped) })
	s.cOnce.Do(func() { close(s.closed) })
	return s.closeErr
}

// harness runs a Runner in a goroutine of the current synctest bubble.
type harness struct {
	t      *testing.T
	r      *Runner
	sig    *fakeSignals
	log    *recLogger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

// runInBubble is runUntilReady for tests in a synctest bubble: it also
// lets Serve get going (synctest.Wait) before the test acts.
func runInBubble(t *testing.T, svr Server, opts ...Option) *harness {
	h := runUntilReady(t, svr, opts...)
	synctest.Wait()
	return h
}

// runUntilReady makes a Runner for svr with a fake signal source and a
// recording logger (later options override them), runs it, and waits until
// it is ready or Run has returned. It works inside or outside a bubble.
func runUntilReady(t *testing.T, svr Server, opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, sig: &fakeSignals{}, log: &recLogger{}, done: make(chan error, 1)}
	opts = append([]Option{withSignalSource(h.sig), WithLogger(h.log)}, opts...)
	r, err := NewRunner(svr, opts...)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	h.r = r
	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.cancel)
	go func() { h.done <- r.Run(h.ctx) }()
	select {
	case <-r.Ready():
	case err := <-h.done:
		h.done <- err
	}
	return h
}

// wait returns how much bubble time passed until Run returned, and its result.
func (h *harness) wait() (time.Duration, error) {
	h.t.Helper()
	begin := time.Now()
	err := <-h.done
	return time.Since(begin), err
}

// returned reports whether Run has returned, once every goroutine in the
// bubble is blocked.
func (h *harness) returned() bool {
	synctest.Wait()
	select {
	case err := <-h.done:
		h.done <- err
		return true
	default:
		return false
	}
}
