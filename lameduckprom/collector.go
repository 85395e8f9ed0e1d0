package lameduckprom

import (
	"strings"

	"github.com/b583c413/lameduck"
	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "lameduck"

// The labels of a work row, in the order the descriptions list them.
var workLabels = []string{"server", "kind", "protocol"}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// Every metric the collector can send. doc.go lists them for the reader;
// keep the two in step.
var (
	stateDesc = newDesc("state",
		"Where the Runner is: 1 for its current state, 0 for the others.", "state")
	periodDesc = newDesc("period_seconds",
		"The lame-duck period the Runner was given.")
	inFlightDesc = newDesc("in_flight",
		"Work in flight now, by server, kind (requests, connections, items) and protocol.", workLabels...)
	startDesc = newDesc("lame_duck_start_time_seconds",
		"Unix time at which lame-duck mode began, labelled with what began it; absent until it has.", "trigger")
	stopDurationDesc = newDesc("stop_duration_seconds",
		"Time from the start of lame-duck mode to now, or to Run's return once it has returned.")
	phaseDurationDesc = newDesc("stop_phase_duration_seconds",
		"Time each phase of the stop took, or has taken so far while it runs.", "phase")
	phaseRunningDesc = newDesc("stop_phase_running",
		"1 while the phase runs; 1 after Run returned means it did not return within the close grace.", "phase")
	phaseFailedDesc = newDesc("stop_phase_failed",
		"1 if the phase returned an error, else 0.", "phase")
	outcomeDesc = newDesc("stop_outcome",
		"How Run ended: 1 for its outcome (clean, failed, expired, forced); all 0 until Run returns.", "outcome")
	atLameDuckDesc = newDesc("stop_at_lame_duck",
		"Work that was in flight when lame-duck mode began.", workLabels...)
	finishedDesc = newDesc("stop_finished",
		"Work that ended on its own between the start of lame-duck mode and Close.", workLabels...)
	cutDesc = newDesc("stop_cut",
		"Work that Close cut short.", workLabels...)
	heldDesc = newDesc("stop_held",
		"Work still in flight when the lame-duck period ran out: what held the drain.", workLabels...)
)

var allDescs = []*prometheus.Desc{
	stateDesc, periodDesc, inFlightDesc, startDesc, stopDurationDesc,
	phaseDurationDesc, phaseRunningDesc, phaseFailedDesc, outcomeDesc,
	atLameDuckDesc, finishedDesc, cutDesc, heldDesc,
}

// states and outcomes are every value the enum-style metrics take, so that
// each scrape has the same series whatever the Runner is doing.
var (
	states = []lameduck.State{
		lameduck.StateNotStarted, lameduck.StateRunning, lameduck.StateLameDuck,
		lameduck.StateStopped, lameduck.StateFailed,
	}
	outcomes = []string{"clean", "failed", "expired", "forced"}
)

// NewCollector returns a Prometheus collector that reads r's [lameduck.Report]
// each time it is scraped, and turns it into the metrics this package's
// documentation lists. It starts no goroutine and keeps nothing between
// scrapes, so it may be registered before Run is called and read while Run
// drains the server and after it has returned.
//
// Register it with the registry your metrics endpoint serves. That endpoint
// should not be a server r runs: lameduck would shut it down with the rest,
// so the end of the drain could not be scraped. To tell apart several
// Runners in one process, register each collector through
// [prometheus.WrapRegistererWith] with a label of your own.
//
// A nil r reports a Runner that has not started.
func NewCollector(r *lameduck.Runner) prometheus.Collector {
	return collector{r: r}
}

type collector struct{ r *lameduck.Runner }

// Describe sends every metric's description, so the collector can be
// checked by a registry when it is registered.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect takes one Report and sends it as metrics.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	rep := c.r.Report()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	for _, s := range states {
		gauge(stateDesc, flag(rep.State == s), snake(s.String()))
	}
	gauge(periodDesc, rep.Period.Seconds())
	for _, o := range outcomes {
		gauge(outcomeDesc, flag(rep.Outcome == o), o)
	}

	work := sumRows(rep)
	for _, w := range work {
		gauge(inFlightDesc, float64(w.n[0]), w.labels[:]...)
	}

	began := !rep.Began.IsZero()
	if began {
		gauge(startDesc, float64(rep.Began.UnixNano())/1e9, rep.Trigger)
		gauge(stopDurationDesc, rep.Took.Seconds())
		// Before lame-duck mode these figures are all zero and say nothing,
		// so they appear only once a stop has begun.
		for _, w := range work {
			gauge(atLameDuckDesc, float64(w.n[1]), w.labels[:]...)
			gauge(finishedDesc, float64(w.n[2]), w.labels[:]...)
			gauge(cutDesc, float64(w.n[3]), w.labels[:]...)
			gauge(heldDesc, float64(w.n[4]), w.labels[:]...)
		}
	}

	seen := map[string]bool{}
	for _, p := range rep.Phases {
		// Phase names are unique today; should two ever share one, only
		// the first is sent, since a registry refuses a scrape with two
		// series of the same labels.
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		gauge(phaseDurationDesc, p.Took.Seconds(), p.Name)
		gauge(phaseRunningDesc, flag(p.Running), p.Name)
		gauge(phaseFailedDesc, flag(p.Err != nil), p.Name)
	}
}

// row is a Report's work rows of one label set, added up: InFlight,
// AtLameDuck, Finished, Cut, Held.
type row struct {
	labels [3]string
	n      [5]int
}

// sumRows adds up the report's rows that share server, kind and protocol
// (two Group members given the same name, say), so that each label set is
// sent once. Rows keep the report's order.
func sumRows(rep lameduck.Report) []*row {
	var out []*row
	by := map[[3]string]*row{}
	for _, w := range rep.Work {
		key := [3]string{w.Server, w.Kind, w.Protocol}
		r := by[key]
		if r == nil {
			r = &row{labels: key}
			by[key] = r
			out = append(out, r)
		}
		for i, v := range [5]int{w.InFlight, w.AtLameDuck, w.Finished, w.Cut, w.Held} {
			r.n[i] += v
		}
	}
	return out
}

// flag turns a condition into a gauge's 1 or 0.
func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// snake writes a state's words as a label value: "lame duck" as "lame_duck".
func snake(s string) string { return strings.ReplaceAll(s, " ", "_") }
