package lameduck

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Report says what a [Runner] knows of its Server's work and of its stop:
// what began lame-duck mode, how long each phase took, and, for each server
// (each [Group] member, by name), what was in flight when lame-duck mode
// began, what finished during it, what Close cut, and what still held the
// drain when the period ended. [Runner.Report] returns one at any time: while
// the Server runs it says what is in flight now (for a metrics endpoint), and
// once Run has returned it is the stop's final account. The Runner logs it
// as its last line.
//
// The figures come from the books the adapters keep anyway: [FromHTTP]
// counts requests and connections by protocol, [FromWorker] items in
// handle, and lameduckgrpc's Streams gRPC streams. A Server of another
// kind (ServerFuncs, a plain FromGRPC) has no rows, unless it (or the
// GRPCServer given to FromGRPC) has a method
//
//	ReportWork(add func(kind, protocol string, inFlight, done, cut int))
//
// which calls add once per kind of work with what is in flight now and
// how many have ended, and been cut, since the Server began (both only
// grow); the Runner turns them into the rows below. It is called on the
// stop's path, so it must return at once: one that panics, or takes more
// than 50 ms when lame-duck mode begins or the period runs out (250 ms for
// a Report asked for at any other time), is left out of that report.
//
// Report walks an HTTP server's open connections under the lock its
// requests take (about 10 ns each): call it at a scrape's pace, not on
// every request.
type Report struct {
	State   State         // where the Runner is (or was, when Run returned)
	Trigger string        // what began lame-duck mode: "signal", "context" or "stop"; "" if nothing did
	Cause   string        // the signal ("terminated"), the context's cause or the failure given to Stop
	Began   time.Time     // when lame-duck mode began; zero if it has not
	Period  time.Duration // the lame-duck period
	Took    time.Duration // from Began to the end of the drain (Close included; the post-shutdown steps apart), or to now
	// Outcome is how Run ends: "clean" (it returns nil), "failed" (a
	// failure, or a Shutdown that failed), "expired" (the period ran out and
	// Close was called) or "forced" (a second signal ended the period); ""
	// until the drain is over. It is set before the post-shutdown steps run.
	Outcome string

	// Phases are the stop's phases in the order they began: each
	// pre-shutdown step ("pre-shutdown step 1 of 2 (readiness)"),
	// "Shutdown", "Close" and each post-shutdown step. Took is how long the
	// phase took, or has taken so far while Running; a phase still Running
	// once Run has returned did not return within the close grace.
	Phases []struct {
		Name    string
		Took    time.Duration
		Err     error
		Running bool
	}

	// Work has one row per server and kind of work. Server is the member's
	// name given with [Member], or, without one, its position as errors
	// give it ("server 1" for a Group's second member); nested Groups join
	// them with "/"; "" for a lone Server. Kind is "requests",
	// "connections" or "items"; Protocol is "HTTP/1" or "HTTP/2" for
	// requests and connections, or "hijacked" for connections taken over
	// from net/http (a WebSocket) or registered with Track.
	//
	// InFlight is what is in flight now. AtLameDuck is what was in flight
	// when lame-duck mode began; Finished, what ended between then and
	// Close, work that arrived during the drain included (a request whose
	// client hung up is finished too: its handler returned, and Close did
	// not cut it); Cut, what Close cut short: handler calls still running,
	// connections with a request or stream in flight (or taken over), items
	// whose handler Close cancelled or that a ReleaseSource hook handed
	// back too late to be handled. An HTTP/1 response whose handler had
	// returned is not cut by Close: what is queued in the kernel still
	// reaches a client that reads it. An HTTP/2 connection that still owed
	// bytes is counted cut, though its client may hold them already (and
	// lameduckhttp3 counts an HTTP/3 connection cut when its drain, not its
	// client, closed it after it carried a response). Held
	// is what was in flight when the period ran out: what held the drain
	// (for connections, those with work in flight, not idle ones).
	Work []struct {
		Server, Kind, Protocol string
		InFlight, AtLameDuck   int
		Finished, Cut, Held    int
	}
}

// String sums the report up in one line, as the Runner logs it.
func (rep Report) String() string {
	var b strings.Builder
	switch {
	case rep.Outcome != "" && rep.Trigger != "":
		fmt.Fprintf(&b, "%s after %v", rep.Outcome, roundDuration(rep.Took))
	case rep.Outcome != "":
		fmt.Fprintf(&b, "%s; no lame-duck mode", rep.Outcome)
	case rep.Trigger != "":
		fmt.Fprintf(&b, "%s for %v", rep.State, roundDuration(rep.Took))
	default:
		b.WriteString(rep.State.String())
	}
	if rep.Trigger != "" {
		fmt.Fprintf(&b, ", begun by %s", rep.Trigger)
		if rep.Cause != "" {
			fmt.Fprintf(&b, " (%s)", rep.Cause)
		}
	}
	{
		for i, p := range rep.Phases {
			sep := ", "
			if i == 0 {
				sep = "; phases: "
			}
			fmt.Fprintf(&b, "%s%s %v", sep, p.Name, roundDuration(p.Took))
			if p.Running {
				b.WriteString(" (still running)")
			}
		}
	}
	for _, w := range rep.workByServer() {
		if sum := w.summary(rep.Trigger != ""); sum != "" {
			fmt.Fprintf(&b, "; %s: %s", w.label, sum)
		}
	}
	return b.String()
}

// LogValue gives the report to slog as a group of typed attributes whose
// keys do not move when servers are added: the outcome, trigger and
// durations; "phases", a group per phase keyed by its place
// ("pre_shutdown_1", "shutdown", "close", "post_shutdown_1"), each with its
// name, time and error; and "work", a group per server ("server" for a lone
// one, else its name as in Work) holding a group per kind of work (such as
// "requests_http1", "items") with its figures. Rows that are all zero are
// left out.
func (rep Report) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("state", rep.State.String())}
	if rep.Outcome != "" {
		attrs = append(attrs, slog.String("outcome", rep.Outcome))
	}
	if rep.Trigger != "" {
		attrs = append(attrs, slog.String("trigger", rep.Trigger), slog.String("cause", rep.Cause),
			slog.Time("began", rep.Began), slog.Duration("period", rep.Period), slog.Duration("took", rep.Took))
	}
	if phases := rep.phaseAttrs(); len(phases) > 0 {
		attrs = append(attrs, slog.Group("phases", phases...))
	}
	if work := rep.workAttrs(); len(work) > 0 {
		attrs = append(attrs, slog.Group("work", work...))
	}
	return slog.GroupValue(attrs...)
}

// phaseAttrs is a group per phase, keyed by phaseKey.
func (rep Report) phaseAttrs() []any {
	var phases []any
	for _, p := range rep.Phases {
		pa := []any{slog.String("name", p.Name), slog.Duration("took", p.Took)}
		if p.Err != nil {
			pa = append(pa, slog.Any("error", p.Err))
		}
		if p.Running {
			pa = append(pa, slog.Bool("running", true))
		}
		phases = append(phases, slog.Group(phaseKey(p.Name), pa...))
	}
	return phases
}

// workAttrs is a group per server holding a group per kind of work, all
// zero rows left out.
func (rep Report) workAttrs() []any {
	var names []string
	byServer := map[string][]any{}
	for _, w := range rep.Work {
		if w.InFlight == 0 && w.AtLameDuck == 0 && w.Finished == 0 && w.Cut == 0 && w.Held == 0 {
			continue
		}
		name := w.Server
		if name == "" {
			name = "server"
		}
		if _, seen := byServer[name]; !seen {
			names = append(names, name)
		}
		byServer[name] = append(byServer[name], slog.Group(workAttrKey(w.Kind, w.Protocol),
			slog.Int("in_flight", w.InFlight), slog.Int("at_lame_duck", w.AtLameDuck),
			slog.Int("finished", w.Finished), slog.Int("cut", w.Cut), slog.Int("held", w.Held)))
	}
	var work []any
	for _, name := range names {
		work = append(work, slog.Group(name, byServer[name]...))
	}
	return work
}

// phaseKey is a phase's key in LogValue: "shutdown", "close",
// "pre_shutdown_2", "post_shutdown_1".
func phaseKey(name string) string {
	var kind string
	var n int
	if _, err := fmt.Sscanf(name, "%s step %d", &kind, &n); err == nil {
		return strings.ReplaceAll(kind, "-", "_") + "_" + strconv.Itoa(n)
	}
	return strings.ToLower(name)
}

// workAttrKey is a kind of work's key in LogValue: "requests_http1", "items".
func workAttrKey(kind, protocol string) string {
	key := strings.ToLower(kind)
	if protocol != "" {
		key += "_" + strings.ToLower(strings.ReplaceAll(protocol, "/", ""))
	}
	return strings.ReplaceAll(key, " ", "_")
}

// serverWork is a report's work rows of one server, summed by kind:
// "requests", "connections", "hijacked connections" (the connections whose
// protocol is "hijacked") and any other kind a Server reports, in the order
// first seen. Each sum is InFlight, AtLameDuck, Finished, Cut, Held.
type serverWork struct {
	label string // `"api"`, "server 2" or "the server"
	kinds []string
	sums  map[string]*[5]int
}

func (rep Report) workByServer() []*serverWork {
	var out []*serverWork
	by := map[string]*serverWork{}
	for _, w := range rep.Work {
		s := by[w.Server]
		if s == nil {
			s = &serverWork{label: serverLabel(w.Server), sums: map[string]*[5]int{}}
			by[w.Server] = s
			out = append(out, s)
		}
		kind := w.Kind
		if kind == "connections" && w.Protocol == "hijacked" {
			kind = "hijacked connections"
		}
		sum := s.sums[kind]
		if sum == nil {
			sum = new([5]int)
			s.sums[kind] = sum
			s.kinds = append(s.kinds, kind)
		}
		for i, n := range [5]int{w.InFlight, w.AtLameDuck, w.Finished, w.Cut, w.Held} {
			sum[i] += n
		}
	}
	return out
}

// get returns the sums of kind, zeros if the server has none.
func (s *serverWork) get(kind string) [5]int {
	if sum := s.sums[kind]; sum != nil {
		return *sum
	}
	return [5]int{}
}

// serverLabel names a server in a sentence.
func serverLabel(name string) string {
	switch {
	case name == "":
		return "the server"
	case strings.HasPrefix(name, "server ") && !strings.Contains(name, "/"):
		return name
	}
	return fmt.Sprintf("%q", name)
}

// summary says what a server had, did and lost: before lame-duck mode, what
// is in flight; after, what was in flight, finished and cut. Connections
// are told in full only for a server that reports nothing else; beside
// other kinds, only those cut (lameduckhttp3 cuts a connection whose
// requests had all ended).
func (s *serverWork) summary(stopped bool) string {
	var parts []string
	for _, kind := range s.kinds {
		if kind == "connections" && len(s.kinds) > 1 {
			if n := s.get(kind); stopped && n[3] > 0 {
				parts = append(parts, fmt.Sprintf("%s cut", count(n[3], kind)))
			}
			continue
		}
		n := s.get(kind)
		switch {
		case !stopped && n[0] > 0:
			parts = append(parts, fmt.Sprintf("%s in flight", count(n[0], kind)))
		case stopped && (n != [5]int{} || kind != "hijacked connections"):
			parts = append(parts, fmt.Sprintf("%s in flight at lame-duck, %d finished, %d cut", count(n[1], kind), n[2], n[3]))
		}
	}
	return strings.Join(parts, ", ")
}

// held says what still held one server's drain when the period ended, as
// `"api" still had 3 requests on 2 connections`; "" when nothing did.
func (s *serverWork) held() string {
	var parts []string
	switch r, c := s.get("requests")[4], s.get("connections")[4]; {
	case r > 0 && c > 0:
		parts = append(parts, fmt.Sprintf("%s on %s", count(r, "requests"), count(c, "connections")))
	case r > 0:
		parts = append(parts, count(r, "requests"))
	case c > 0:
		parts = append(parts, count(c, "open connections"))
	}
	for _, kind := range s.kinds {
		n := s.get(kind)[4]
		switch {
		case n == 0 || kind == "requests" || kind == "connections":
		case kind == "items":
			parts = append(parts, count(n, kind)+" in handle")
		default:
			parts = append(parts, count(n, kind))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return s.label + " still had " + strings.Join(parts, " and ")
}

// heldText says what held the drain of every server that had work left.
func (rep Report) heldText() string {
	var parts []string
	for _, s := range rep.workByServer() {
		if h := s.held(); h != "" {
			parts = append(parts, h)
		}
	}
	return strings.Join(parts, "; ")
}

// count writes n of a kind given in the plural: "1 request", "3 requests".
func count(n int, kind string) string {
	if n == 1 {
		return "1 " + strings.TrimSuffix(kind, "s")
	}
	return fmt.Sprintf("%d %s", n, kind)
}
