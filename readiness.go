package lameduck

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Readiness is a readiness probe for a load balancer or Kubernetes: an
// [http.Handler] that answers 200 "ok" while the service should get traffic
// and 503 otherwise. Its zero value is ready to use and reports ready; use
// [Warming] for one that reports not ready until the service has warmed up.
// Serve it from the same server as your traffic, so it can answer only once
// the port is bound.
//
// The probe fails for good once Fail is called; Fail has the shape of a
// pre-shutdown step. The usual wiring fails the probe the moment lame-duck
// mode begins and then keeps serving while load balancers notice:
//
//	var ready lameduck.Readiness
//	mux.Handle("/readyz", &ready)
//	lameduck.Run(ctx, lameduck.FromHTTP(srv),
//		lameduck.WithPreShutdown(ready.Fail, lameduck.Delay(5*time.Second)))
//
// [Readiness.FailUntilSeen] replaces the fixed delay with one that ends when
// the failing probe has been seen. Either wait is spent inside the lame-duck
// period: give Period at least the wait plus the time the drain needs.
//
// A Readiness must not be copied after first use.
type Readiness struct {
	mu    sync.Mutex
	state probeState
	// The 503s answered since Fail, as the times the count reached 1, 2, …
	// and the times each distinct client first got one; both are capped at
	// maxSeen, which bounds the memory of a probe that fails for days.
	answers  []time.Time
	checkers []time.Time
	seenBy   map[string]bool
	// answered is closed and replaced at every 503 counted, to wake the
	// steps that wait for one; nil while nobody waits.
	answered chan struct{}
	// watched is non-nil while FailUntilSeen steps wait (waiters of them),
	// and closed when the last one returns.
	watched chan struct{}
	waiters int
}

// probeState is the life of a probe: the zero value is ready, so that a
// zero Readiness reports ready; warming → ready → failed, and failed is
// final.
type probeState uint8

const (
	probeReady probeState = iota
	probeWarming
	probeFailed
)

// maxSeen caps the answers and checkers a Readiness remembers, and so the
// counts [Seen] can ask for.
const maxSeen = 1024

// Warming returns a Readiness that answers 503 "warming up" until its
// Warmed method is called, for a service that must not get traffic before
// it has loaded its caches, opened its connections or compiled its
// templates. Start serving (so that the probe can answer), warm up, then
// call Warmed.
func Warming() *Readiness {
	return &Readiness{state: probeWarming}
}

// Warmed makes a probe made by [Warming] answer 200 "ok". It does nothing
// once Fail has been called (a lame duck does not come back) or when the
// probe already reports ready. It is safe to call from any goroutine, any
// number of times.
func (r *Readiness) Warmed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == probeWarming {
		r.state = probeReady
	}
}

// ServeHTTP answers 200 "ok" while ready, 503 "warming up" before Warmed
// has been called on a probe made by [Warming], and 503 "lame duck" once
// Fail has been called. Responses are marked not to be cached. Each 503
// served after Fail is counted for [Readiness.FailUntilSeen], along with
// the client's IP address.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.mu.Lock()
	state, watched := r.state, r.watched
	r.mu.Unlock()
	switch state {
	case probeFailed:
		// With its length given, the answer is whole once flushed: a
		// checker must not wait for the handler to return to read it.
		const body = "lame duck\n"
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, body)
		if watched != nil && req.ProtoMajor == 1 {
			// A step waits for this answer to be seen: it is, once the
			// checker has read it, and a checker that hangs up after the
			// answer (HAProxy's, the kubelet's) has. Waiting for that rather
			// than counting the answer as it is written keeps a margin
			// honest when the checker is slow to act, say for want of CPU.
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			t := time.NewTimer(hangUpWait)
			select {
			case <-req.Context().Done(): // the checker hung up
			case <-t.C: // it keeps its connection: take the answer as read
			case <-watched: // no step waits any more
			}
			t.Stop()
		}
		r.count(req.RemoteAddr)
	case probeWarming:
		http.Error(w, "warming up", http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	}
}

// hangUpWait is how long a 503 answered while a FailUntilSeen step waits
// holds its connection, waiting for the checker to hang up, before it counts
// anyway. Checkers that keep their connections between checks are counted
// this much late; the others are counted as they hang up.
const hangUpWait = 500 * time.Millisecond

// count records a 503 answered to remoteAddr, and wakes the waiting steps.
func (r *Readiness) count(remoteAddr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if len(r.answers) < maxSeen {
		r.answers = append(r.answers, now)
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if !r.seenBy[host] && len(r.checkers) < maxSeen {
		if r.seenBy == nil {
			r.seenBy = make(map[string]bool)
		}
		r.seenBy[host] = true
		r.checkers = append(r.checkers, now)
	}
	if r.answered != nil {
		close(r.answered)
		r.answered = nil
	}
}

// Fail makes the probe answer 503 from now on, whether or not it had warmed
// up. It always returns nil; the context is unused and is there so that Fail
// can be a pre-shutdown step.
func (r *Readiness) Fail(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = probeFailed
	return nil
}

// Seen says when a failed probe counts as noticed, for
// [Readiness.FailUntilSeen]: once it has answered 503 Answers times, to at
// least Checkers distinct clients, and Margin has passed since; but never
// sooner than Floor or later than Ceiling after the step began.
//
// While such a step waits, an answer counts once the checker has read it:
// when the checker hangs up after the answer, as HAProxy's checks and the
// kubelet's probes do, so that a checker slow to act (short of CPU, say)
// does not eat into the margin; or half a second after the answer, for a
// checker that keeps its connection for the next check (an Envoy default).
// The probe's handler holds the connection until then, or until the step
// returns. Answers given while no step waits count as they are written.
type Seen struct {
	// Answers is how many 503 answers the probe must have given since
	// Fail. Zero or less means one, or Checkers when that is more. Counts
	// above 1024 are taken as 1024.
	//
	// A balancer that takes a server out after n failed checks (HAProxy's
	// fall, Envoy's unhealthy_threshold) has seen the probe fail after n
	// answers, when it is the only client of the probe.
	Answers int
	// Checkers is how many distinct clients, told apart by IP address, must
	// each have got a 503. Zero means the answers may all go to one. Use it
	// when several balancer nodes check the server (a cloud load balancer
	// checks each target from many addresses) and every one must stop
	// sending. Counts above 1024 are taken as 1024.
	Checkers int
	// Margin is how long to keep serving after the answer that completes
	// the count: the time the balancer needs to act on the answer (to stop
	// picking the server, and to finish dispatching requests it had picked
	// it for). Zero or less means none; tens of milliseconds is typical.
	Margin time.Duration
	// Floor is the least the step waits, however soon the count is reached.
	// Zero or less means no floor.
	Floor time.Duration
	// Sole says that the balancers whose checks are counted are the only
	// way requests reach this server: once they have seen the probe fail,
	// nobody sends on the server's open keep-alive connections, and the
	// drain need not keep them open (see FailUntilSeen). Leave it false
	// when something else may send (kube-proxy's connections to a pod, a
	// proxy that does not check).
	Sole bool
	// Ceiling is the most the step waits, if the count is never reached:
	// a balancer that does not check, or that checks another path. It must
	// be positive. Above Floor, or it is taken as Floor.
	Ceiling time.Duration
}

// errNoCeiling is what a step with no ceiling returns, at once.
var errNoCeiling = errors.New("lameduck: Readiness.FailUntilSeen: Seen.Ceiling must be positive")

// FailUntilSeen returns a pre-shutdown step that fails the probe, as Fail
// does, and then keeps serving until the failing probe has been seen as s
// describes: it returns Margin after the probe's 503 answers reach the
// count, clamped to the interval [Floor, Ceiling] measured from the moment
// the step began; or with the context's error when the context is done
// first. Answers given before the step began, after an earlier Fail, count.
// Reaching the Ceiling is not an error: the step returns nil and the drain
// goes on, as after a fixed [Delay]. A Ceiling of zero or less is a
// mistake: the step fails the probe and returns an error at once, which the
// Runner logs.
//
// It is the adaptive version of Fail followed by Delay. A fixed delay must
// be longer than the slowest the balancer ever takes to notice, so every
// stop pays for the worst one; this step pays for the one at hand.
//
// With balancers that check the server actively (HAProxy's option httpchk,
// Envoy's health checking, a cloud load balancer's target checks), the
// answers are what takes the server out of rotation: set Answers to the
// number of failed checks the balancer needs (HAProxy's fall), Checkers to
// the number of balancer nodes that check on their own, a Margin of a few
// tens of milliseconds, and a Ceiling of a few check intervals.
//
// Kubernetes is different: a pod that is being deleted is taken out of its
// Service's endpoints at once, whatever its probe says, and the news takes
// seconds to reach kube-proxy, ingress controllers and the balancers that
// follow endpoints — none of which the pod can see. Keep a Floor there as
// long as the fixed delay you would otherwise use; the count then only
// adds time when something also checks the pod directly and has not
// noticed yet. Where nothing does, Fail and [Delay] say the same more
// plainly.
//
// With [Seen].Sole, a step that reached its count tells the drain that
// follows it, within the same Run, that requests have stopped coming:
// [FromHTTP]'s drain then closes idle keep-alive connections at once
// instead of keeping them for a while for clients that may still send on
// them. A step that ended at its Ceiling, or without Sole, says nothing,
// and the drain keeps them.
func (r *Readiness) FailUntilSeen(s Seen) func(context.Context) error {
	answers := min(max(s.Answers, s.Checkers, 1), maxSeen)
	checkers := min(max(s.Checkers, 0), maxSeen)
	margin, floor := max(s.Margin, 0), max(s.Floor, 0)
	ceiling := max(s.Ceiling, floor)
	return func(ctx context.Context) error {
		begin := time.Now()
		_ = r.Fail(ctx)
		if s.Ceiling <= 0 {
			return errNoCeiling
		}
		r.watch()
		defer r.unwatch()
		for {
			until := begin.Add(ceiling)
			r.mu.Lock()
			seenAt, seen := r.seenAt(answers, checkers)
			if seen {
				// Margin after the count, within [begin+floor, begin+ceiling].
				until = begin.Add(min(max(seenAt.Add(margin).Sub(begin), floor), ceiling))
			}
			if r.answered == nil {
				r.answered = make(chan struct{})
			}
			answered := r.answered
			r.mu.Unlock()

			wait := time.Until(until)
			if wait <= 0 {
				noteBalancerStopped(ctx, seen && s.Sole)
				return nil
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
				noteBalancerStopped(ctx, seen && s.Sole)
				return nil
			case <-answered:
				t.Stop()
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
}

// watch and unwatch bracket a FailUntilSeen step's wait: while one waits,
// the probe's 503s are counted once read (see ServeHTTP).
func (r *Readiness) watch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiters == 0 {
		r.watched = make(chan struct{})
	}
	r.waiters++
}

func (r *Readiness) unwatch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiters--
	if r.waiters == 0 {
		close(r.watched)
		r.watched = nil
	}
}

// seenAt returns when the probe's 503s reached the count of answers and
// checkers, if they have. r.mu must be held.
func (r *Readiness) seenAt(answers, checkers int) (time.Time, bool) {
	if len(r.answers) < answers || len(r.checkers) < checkers {
		return time.Time{}, false
	}
	at := r.answers[answers-1]
	if checkers > 0 && r.checkers[checkers-1].After(at) {
		at = r.checkers[checkers-1]
	}
	return at, true
}
