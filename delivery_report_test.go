package lameduck

import "fmt"

// judgeReport checks the Runner's Report against what the clients of one
// delivery case saw (issue: the report's counts must match the oracle). A
// request counts from the trigger on: one whose handler returned before it
// is in neither Finished nor Cut, unless Close cut its response on the way.
//
//   - Over HTTP/1 each cut response is a request Cut: Cut is the number of
//     clients that did not get their response whole, and Finished the
//     number that did, of those whose handler ran after the trigger.
//   - Over HTTP/2 a response cut on its way after its handler returned
//     counts in its connection's Cut, not as a request: a client that got
//     less than the whole response means some Cut, one that got it whole
//     means no request Cut (its connection may be: it owed bytes at Close
//     that the client happened to hold already), and every handler that
//     ran after the trigger is in Finished or Cut.
//   - When Run returned nil, nothing was cut.
func judgeReport(c deliveryCase, runErr error, xs []*exchange, rep Report) []deliveryFault {
	var faults []deliveryFault
	add := func(format string, args ...any) {
		faults = append(faults, deliveryFault{"report", fmt.Sprintf(format, args...) + fmt.Sprintf(" (report: %s)", rep)})
	}
	var finished, cut, connCut int
	for _, w := range rep.Work {
		switch w.Kind {
		case "requests":
			finished += w.Finished
			cut += w.Cut
		case "connections":
			connCut += w.Cut
		}
	}
	main := xs[len(xs)-1]
	ran, whole := closed(main.entered), main.read == main.size() && main.readErr == nil
	afterTrigger := ran && c.stop != stopAfterReturn // its handler ran, or still ran, after the trigger
	// Two moments race the Runner's own: a handler that has just returned
	// when the test cancels the context may leave the books after the
	// Runner's snapshot, and a request sent right after the cancel may be
	// answered before it. Either count is right for them.
	racy := ran && whole && (c.stop == stopAfterReturn || (c.stop == stopIdle && !c.late))
	if racy && finished == 1 {
		afterTrigger = true
	}
	h2 := c.proto == wireH2TLS || c.proto == wireH2C
	switch {
	case runErr == nil && (cut != 0 || connCut != 0):
		add("Run = nil, but the report has %d requests and %d connections cut", cut, connCut)
	case !h2:
		wantCut, wantFinished := 0, 0
		if ran && !whole {
			wantCut = 1
		}
		if afterTrigger && whole {
			wantFinished = 1
		}
		if racy && finished == 0 {
			wantFinished = 0
		}
		if cut != wantCut || finished != wantFinished {
			add("HTTP/1: %d finished, %d cut; the client got %d of %d bytes, want %d finished, %d cut",
				finished, cut, main.read, main.size(), wantFinished, wantCut)
		}
	default:
		want := 0
		if afterTrigger && !(racy && finished+cut == 0) {
			want = 1
		}
		if finished+cut != want {
			add("HTTP/2: %d finished + %d cut, want %d", finished, cut, want)
		}
		if ran && !whole && cut+connCut == 0 {
			add("HTTP/2: the client got %d of %d bytes, but nothing is counted cut", main.read, main.size())
		}
		// A connection that still owed bytes at Close counts as cut: its
		// client may lose them (its window updates meet a closed socket,
		// which resets), or may have them in its buffers already. So a
		// whole response allows a cut connection, not a cut request.
		if whole && cut != 0 {
			add("HTTP/2: the client got the whole response, but %d requests are counted cut", cut)
		}
	}
	return faults
}
