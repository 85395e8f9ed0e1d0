package lameduckotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/b583c413/lameduck"
)

// Attribute keys.
const (
	keyState    = attribute.Key("lameduck.state")
	keyOutcome  = attribute.Key("lameduck.outcome")
	keyTrigger  = attribute.Key("lameduck.trigger")
	keyPhase    = attribute.Key("lameduck.phase")
	keyServer   = attribute.Key("lameduck.server")
	keyProtocol = attribute.Key("lameduck.protocol")
)

// kinds are the Report's kinds of work, each with its unit and the word
// that starts its instruments' descriptions.
var kinds = []struct{ name, unit, noun string }{
	{"requests", "{request}", "HTTP requests"},
	{"connections", "{connection}", "HTTP connections"},
	{"items", "{item}", "Worker items"},
	{"streams", "{stream}", "gRPC streams (lameduckgrpc)"},
}

// The figures of a work row, in the order of figures below.
const (
	inFlight = iota
	atLameDuck
	finished
	cut
	held
	nFigures
)

// figures name each figure of a work row and finish its description.
var figures = [nFigures]struct{ name, desc string }{
	inFlight:   {"lameduck.%s.in_flight", " in flight now."},
	atLameDuck: {"lameduck.stop.%s.at_lame_duck", " in flight when lame-duck mode began, in the last stop."},
	finished:   {"lameduck.stop.%s.finished", " that ended between the start of lame-duck mode and Close, in the last stop."},
	cut:        {"lameduck.stop.%s.cut", " that Close cut short, in the last stop."},
	held:       {"lameduck.stop.%s.held", " still in flight when the lame-duck period ran out, in the last stop."},
}

// states and outcomes are every value lameduck.status and
// lameduck.stop.outcome have a series for.
var (
	states = []lameduck.State{
		lameduck.StateNotStarted, lameduck.StateRunning, lameduck.StateLameDuck,
		lameduck.StateStopped, lameduck.StateFailed,
	}
	outcomes = []string{"clean", "failed", "expired", "forced"}
)

// instruments are what Register creates, and what its callback observes.
type instruments struct {
	status, outcome metric.Int64ObservableUpDownCounter
	took, phase     metric.Float64ObservableGauge
	work            map[string]*[nFigures]metric.Int64ObservableUpDownCounter // by kind
}

// Register creates the instruments listed in the package documentation on
// meter, and registers one callback that reads r's Report once per
// collection and observes them all. Unregister the returned Registration to
// stop the observations (the instruments stay, with no data). Register fails
// when meter or r is nil, or when meter refuses an instrument or the
// callback.
func Register(meter metric.Meter, r *lameduck.Runner) (metric.Registration, error) {
	switch {
	case meter == nil:
		return nil, errors.New("lameduckotel: nil Meter")
	case r == nil:
		return nil, errors.New("lameduckotel: nil Runner")
	}
	ins, list, err := newInstruments(meter)
	if err != nil {
		return nil, err
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ins.observe(o, r.Report())
		return nil
	}, list...)
}

// newInstruments creates the instruments, and lists them for
// RegisterCallback.
func newInstruments(m metric.Meter) (*instruments, []metric.Observable, error) {
	ins := &instruments{work: map[string]*[nFigures]metric.Int64ObservableUpDownCounter{}}
	var errs []error
	var list []metric.Observable
	counter := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		c, err := m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		list = append(list, c)
		return c
	}
	gauge := func(name, desc string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		list = append(list, g)
		return g
	}
	ins.status = counter("lameduck.status", "1",
		"Whether the Runner is in the state given by lameduck.state: 1 if it is, 0 if not.")
	ins.outcome = counter("lameduck.stop.outcome", "1",
		"Whether Run ended as lameduck.outcome says: 1 if it did, 0 if not, or while Run has not returned.")
	ins.took = gauge("lameduck.stop.duration",
		"Time from the start of lame-duck mode until now, or until Run returned.")
	ins.phase = gauge("lameduck.stop.phase.duration",
		"Time each phase of the stop took, or has taken so far.")
	for _, k := range kinds {
		var set [nFigures]metric.Int64ObservableUpDownCounter
		for f, fig := range figures {
			set[f] = counter(fmt.Sprintf(fig.name, k.name), k.unit, k.noun+fig.desc)
		}
		ins.work[k.name] = &set
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return ins, list, nil
}

// observe records one report.
func (ins *instruments) observe(o metric.Observer, rep lameduck.Report) {
	known := false
	for _, s := range states {
		known = known || s == rep.State
		o.ObserveInt64(ins.status, flag(s == rep.State), metric.WithAttributes(keyState.String(s.String())))
	}
	if !known { // a state newer than this package
		o.ObserveInt64(ins.status, 1, metric.WithAttributes(keyState.String(rep.State.String())))
	}
	known = rep.Outcome == ""
	for _, oc := range outcomes {
		known = known || oc == rep.Outcome
		o.ObserveInt64(ins.outcome, flag(oc == rep.Outcome), metric.WithAttributes(keyOutcome.String(oc)))
	}
	if !known {
		o.ObserveInt64(ins.outcome, 1, metric.WithAttributes(keyOutcome.String(rep.Outcome)))
	}

	if !rep.Began.IsZero() {
		o.ObserveFloat64(ins.took, rep.Took.Seconds(), metric.WithAttributes(keyTrigger.String(rep.Trigger)))
	}
	for _, p := range rep.Phases {
		o.ObserveFloat64(ins.phase, p.Took.Seconds(), metric.WithAttributes(keyPhase.String(p.Name)))
	}

	for _, w := range rep.Work {
		set := ins.work[w.Kind]
		if set == nil { // a kind newer than this package
			continue
		}
		attrs := make([]attribute.KeyValue, 0, 2)
		if w.Server != "" {
			attrs = append(attrs, keyServer.String(w.Server))
		}
		if w.Protocol != "" {
			attrs = append(attrs, keyProtocol.String(w.Protocol))
		}
		opt := metric.WithAttributes(attrs...)
		values := [nFigures]int{w.InFlight, w.AtLameDuck, w.Finished, w.Cut, w.Held}
		for f, v := range values {
			o.ObserveInt64(set[f], int64(v), opt)
		}
	}
}

// flag is 1 for true and 0 for false.
func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
