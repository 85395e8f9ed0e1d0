// Package lameduckprom exports what a [lameduck.Runner] knows of its server
// and of its stop as Prometheus metrics. [NewCollector] makes a collector
// that reads [lameduck.Runner.Report] on every scrape:
//
//	r, err := lameduck.NewRunner(h, lameduck.Period(10*time.Second))
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(lameduckprom.NewCollector(r))
//	metrics := &http.Server{Addr: ":9090", Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
//
// Serve the registry from a server the Runner does not run, and stop that
// server only once Run has returned (and, ideally, once it has been scraped
// after that), so that the whole drain and its final account can be read.
// The program in the example directory does so (go run ./example).
//
// # Metrics
//
// All are gauges: a process stops once, so the figures of its stop are
// values of that one stop, not counters to take a rate of. Durations are in
// seconds. The work labels are server (the Group member's name, "" for a
// lone server), kind ("requests", "connections" or "items") and protocol
// ("HTTP/1", "HTTP/2", "hijacked", or "" for items).
//
// Always present:
//
//	lameduck_state{state}                       1 for the Runner's state, 0 for the others: not_started, running, lame_duck, stopped, failed
//	lameduck_period_seconds                     the lame-duck period
//	lameduck_in_flight{server,kind,protocol}    work in flight now
//	lameduck_stop_outcome{outcome}              1 for how Run ended (clean, failed, expired, forced); all 0 until it has
//
// Once lame-duck mode has begun:
//
//	lameduck_lame_duck_start_time_seconds{trigger}    Unix time it began; trigger is signal, context or stop
//	lameduck_stop_duration_seconds                    time since it began, or until Run returned
//	lameduck_stop_at_lame_duck{server,kind,protocol}  work in flight when it began
//	lameduck_stop_finished{server,kind,protocol}      work that ended on its own before Close
//	lameduck_stop_cut{server,kind,protocol}           work Close cut short
//	lameduck_stop_held{server,kind,protocol}          work still in flight when the period ran out
//
// For each phase of the stop, once it has begun (phase is its name, such as
// "pre-shutdown step 1 of 2 (readiness)", "Shutdown" or "Close"):
//
//	lameduck_stop_phase_duration_seconds{phase}  time it took, or has taken so far
//	lameduck_stop_phase_running{phase}           1 while it runs (still 1 after Run returned: it never returned)
//	lameduck_stop_phase_failed{phase}            1 if it returned an error
//
// While the server drains, lameduck_in_flight falls towards 0 and
// lameduck_stop_finished grows; a clean stop ends with stop_outcome{outcome="clean"}
// 1 and stop_held all 0. A Server that keeps no books of its work (a
// ServerFuncs, or FromGRPC) has no work rows.
package lameduckprom
