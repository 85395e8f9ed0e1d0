package lameduck

import (
	"context"
	"net/http"
	"sync/atomic"
)

// Readiness is a readiness probe for a load balancer or Kubernetes: an
// [http.Handler] that answers 200 "ok" until Fail is called and 503 from
// then on. Its zero value is ready to use and reports ready; serve it from
// the same server as your traffic, so it can answer only once the port is
// bound.
//
// Fail has the shape of a pre-shutdown step. The usual wiring fails the probe
// the moment lame-duck mode begins and then keeps serving while load
// balancers notice:
//
//	var ready lameduck.Readiness
//	mux.Handle("/readyz", &ready)
//	lameduck.Run(ctx, lameduck.FromHTTP(srv),
//		lameduck.WithPreShutdown(lameduck.Chain(ready.Fail, lameduck.Delay(5*time.Second))))
//
// The delay is spent inside the lame-duck period: give Period at least the
// delay plus the time the drain needs.
type Readiness struct {
	failed atomic.Bool
}

// ServeHTTP answers 200 "ok" while ready and 503 "lame duck" once Fail has
// been called. Responses are marked not to be cached.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.failed.Load() {
		http.Error(w, "lame duck", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// Fail makes the probe answer 503 from now on. It always returns nil; the
// context is unused and is there so that Fail can be a pre-shutdown step.
func (r *Readiness) Fail(context.Context) error {
	r.failed.Store(true)
	return nil
}
