// Package lameduckotel exports what a [lameduck.Runner] knows of its server
// and of its stop as OpenTelemetry metrics.
//
// [Register] creates asynchronous instruments on a [metric.Meter] and one
// callback for all of them. Each time a reader collects, the callback takes
// one [lameduck.Runner.Report] and observes every instrument from it, so the
// figures of one collection always agree with each other. Nothing is
// counted between collections: the Runner's adapters keep the books anyway.
//
// # Instruments
//
// Names are dotted and lower-case under "lameduck.", units are UCUM ("s",
// "1") or a curly-brace annotation naming what is counted. Attribute values
// are the Report's own strings, so a dashboard and the Runner's last log
// line use the same words.
//
// The Runner:
//
//   - lameduck.status (UpDownCounter, "1"): one series per value of
//     lameduck.state ("not started", "running", "lame duck", "stopped",
//     "failed"), 1 for the state the Runner is in and 0 for the others.
//
// Work in flight now, one series per server and protocol. For each kind of
// work there is its own instrument, so that each has a unit of its own and
// a sum over its attributes means something (the sum of requests and
// connections would not):
//
//   - lameduck.requests.in_flight (UpDownCounter, "{request}")
//   - lameduck.connections.in_flight (UpDownCounter, "{connection}")
//   - lameduck.items.in_flight (UpDownCounter, "{item}"): handle calls of a
//     [lameduck.FromWorker] Worker.
//   - lameduck.streams.in_flight (UpDownCounter, "{stream}"): gRPC streams
//     of a server drained by lameduckgrpc.
//
// Other kinds of work, which a Server of your own may report, are not
// exported (Prometheus' collector, whose kind is a label, has them).
//
// The last stop, with the same series again. Each count is 0 until
// lame-duck mode begins, follows the drain as it goes, and once Run has
// returned is the stop's final account. KIND is requests, connections,
// items or streams, with the unit above:
//
//   - lameduck.stop.KIND.at_lame_duck (UpDownCounter): in flight when
//     lame-duck mode began.
//   - lameduck.stop.KIND.finished (UpDownCounter): ended between the start
//     of lame-duck mode and Close.
//   - lameduck.stop.KIND.cut (UpDownCounter): cut short by Close.
//   - lameduck.stop.KIND.held (UpDownCounter): still in flight when the
//     lame-duck period ran out, holding the drain.
//   - lameduck.stop.outcome (UpDownCounter, "1"): one series per value of
//     lameduck.outcome ("clean", "failed", "expired", "forced"), 1 for how
//     Run ended and 0 for the others; all 0 while Run has not returned.
//   - lameduck.stop.duration (Gauge, "s"): from the start of lame-duck mode
//     until now, or until Run returned; attribute lameduck.trigger
//     ("signal", "context" or "stop"). No series before lame-duck mode.
//   - lameduck.stop.phase.duration (Gauge, "s"): how long each phase of the
//     stop took, or has taken so far; attribute lameduck.phase, the phase's
//     name ("Shutdown", "Close", "pre-shutdown step 1 of 2 (readiness)").
//
// The work instruments carry lameduck.server, the [lameduck.Group] member's
// name ("api", or "server 1" for an unnamed second member; absent for a
// lone server), and, for requests and connections, lameduck.protocol:
// "HTTP/1", "HTTP/2" or "hijacked" (a connection taken over from net/http,
// or registered with Track). The protocol is not given as OpenTelemetry's
// network.protocol.name and network.protocol.version: "HTTP/1" stands for
// HTTP/1.0 and 1.1 together, which no version value says, and "hijacked"
// is no protocol at all.
//
// # Instrument kinds
//
// Counts are asynchronous UpDownCounters, as OpenTelemetry advises for
// absolute values that add up: summed over servers, protocols or processes
// they give a total that means something (requests in flight in a
// deployment, runners in lame-duck mode). The stop's counts are not Counters
// although most only grow during a stop: they are one stop's account, read
// as a value, not a rate, and a Runner registered after another would look
// like a counter reset. lameduck.status and lameduck.stop.outcome follow the
// semantic conventions' pattern for state metrics (an UpDownCounter with
// unit "1" and a series per state), which lets a sum count instances per
// state. Durations are Gauges: a sum of them over processes means nothing.
//
// # Exporting the last stop
//
// A process usually exits right after Run returns, so the stop's final
// figures are only exported if something collects after Run has returned:
// call the MeterProvider's Shutdown (or ForceFlush) then. A post-shutdown
// step runs before Run returns, while the outcome is not known yet.
package lameduckotel
