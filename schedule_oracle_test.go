package lameduck

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The oracle: what CONTRACT.md says Run must do for a schedule, worked out from
// the rules alone (cited by number), as a timeline of instants.

// resultKind is the shape of what Run returns.
type resultKind string

const (
	servedFirst resultKind = "serve"   // Serve ended before any trigger (rules 8, 9)
	cleanDrain  resultKind = "clean"   // the drain finished within the period (rule 4)
	expiredStop resultKind = "expired" // the period ended first (rules 5, 7)
	failedStop  resultKind = "failed"  // Shutdown failed (rule 6)
)

// expectation is what the oracle predicts.
type expectation struct {
	kind      resultKind
	forced    bool          // a second signal ended the period (rule 7)
	at        time.Duration // when Run returns, from its start
	shutdowns int           // calls of the front server's Shutdown
	closes    int           // calls of its Close
	errs      []want        // every error Run's result holds, one each (rules 5, 6)
	exact     bool          // Run's error (or Err) is the single wanted error itself
}

// want matches one error in Run's result.
type want struct {
	desc  string
	match func(error) bool
}

func (s schedule) oracle() expectation {
	const grace = closeGrace
	vEnd := never // when the front's Serve ends on its own
	if s.serve != serveUntilStopped {
		vEnd = s.serveEnd
	}
	vFails := s.serve == serveFails || s.serve == servePanics
	firstSig := never
	if len(s.signals) > 0 {
		firstSig = s.signals[0]
	}
	ctxDone := s.cancelAt
	if s.notify != notifyNone {
		ctxDone = min(ctxDone, firstSig) // the signal cancels the NotifyContext ctx too
	}

	// The first signal or the cancellation begins lame-duck mode (rule 2).
	T := min(firstSig, ctxDone)
	// Serve ending first ends Run, with no lame-duck (rules 8 and 9). A
	// Group's member failing instead asks for lame-duck mode (Group helper).
	if !s.group && vEnd < T {
		return s.servedFirst()
	}
	byRequest := false
	if s.group {
		failAt := s.memberFailAt
		if vFails {
			failAt = min(failAt, vEnd)
		}
		if failAt < T {
			T, byRequest = failAt, true
		}
	}
	bySignal := !byRequest && T == firstSig

	// The period ends at T+period, or at the signal that forces it (rules
	// 3, 5 and 7): the first after T when a signal began lame-duck mode, the
	// second otherwise (one signal seen through a NotifyContext ctx and
	// through Run's handler counts once).
	F := T + s.period
	forced := false
	need := 2
	if bySignal {
		need = 1
	}
	for _, at := range s.signals {
		if at > T {
			if need--; need == 0 {
				if at < F {
					F, forced = at, true
				}
				break
			}
		}
	}

	// The steps run one after another; a slow one is cut short at F (rule 3).
	t := T
	for i, k := range s.steps {
		if t >= F {
			break
		}
		if k == stepSlow {
			t = min(t+s.stepDur[i], F)
		}
	}
	E := t // Shutdown is called at E if E < F
	called := E < F
	closeWorks := s.close != closeHangs

	// The front's Shutdown: when it returns and with what.
	vShutEnd, vShutErr := never, ""
	if called {
		R := E + s.shutDur
		switch {
		case s.shut == shutPanics:
			vShutEnd, vShutErr = E, "panic"
		case R < F:
			vShutEnd, vShutErr = R, map[shutMode]string{shutDrains: "", shutFails: "error", shutGivesUp: "ctx", shutIgnoresCtx: ""}[s.shut]
		case s.shut != shutIgnoresCtx:
			vShutEnd, vShutErr = F, "ctx" // its context ends at F
		case closeWorks:
			vShutEnd, vShutErr = F, "closed" // Close (at F) makes it give up
		case R < F+grace:
			vShutEnd = R
		}
	}
	// The Runner decides at D what kind of stop this is.
	kind, D := expiredStop, F
	if called && vShutEnd < F {
		D = vShutEnd
		switch {
		case vShutErr == "ctx":
			kind = expiredStop
		case vShutErr != "" || (s.group && s.memberShutFails):
			kind = failedStop
		default:
			kind = cleanDrain
		}
	}
	e := expectation{kind: kind, forced: forced && kind == expiredStop && D == F}
	if called {
		e.shutdowns = 1
	}

	// When each Serve returns (never: not within the grace), and so when
	// Run returns. Shutdown stops the front at E; Close stops both at D.
	stopV, stopW := never, never
	if called {
		stopV = E
		if vShutEnd != never {
			stopW = vShutEnd // the Group shuts the other member down next
		}
	}
	closing := kind != cleanDrain
	if closing && closeWorks {
		stopV, stopW = min(stopV, D), min(stopW, D)
	}
	vServeEnd, vServeFailed := stopV, false
	if vEnd <= stopV { // equal only when its failure was the trigger
		vServeEnd, vServeFailed = vEnd, vFails
	}
	wServeEnd, wServeFailed := never, false
	if s.group {
		wServeEnd = stopW
		if s.memberFailAt <= stopW {
			wServeEnd, wServeFailed = s.memberFailAt, true
		}
	}
	if kind == cleanDrain {
		e.at = D
	} else {
		e.closes = 1
		var stuck []string
		if !closeWorks {
			stuck = append(stuck, "Close")
		}
		if vShutEnd >= D+grace && called {
			stuck = append(stuck, "Shutdown")
		}
		serveEnd := vServeEnd
		if s.group {
			serveEnd = max(serveEnd, wServeEnd) // a Group serves until every member has returned
		}
		if serveEnd >= D+grace {
			stuck = append(stuck, "Serve")
		}
		e.at = D
		if len(stuck) > 0 {
			e.at = D + grace
			e.errs = append(e.errs, says("stuck", joinNames(stuck)+" did not return within"))
		}
		switch s.close {
		case closeFails:
			e.errs = append(e.errs, isErr(errSchedClose, 1, s.group))
		case closePanics:
			e.errs = append(e.errs, says("Close's panic", "Close panicked"))
		}
	}
	returned := e.at
	if kind == cleanDrain {
		returned = D
	}
	// Every error seen before Run returns is in its result (rules 5 and 6).
	switch {
	case vShutEnd > returned:
	case vShutErr == "error":
		e.errs = append(e.errs, isErr(errSchedShutdown, 1, s.group))
	case vShutErr == "panic":
		e.errs = append(e.errs, says("Shutdown's panic", "Shutdown panicked"))
	case vShutErr == "closed":
		e.errs = append(e.errs, says("Shutdown's error after Close", "closed during Shutdown"))
	}
	if s.group && s.memberShutFails && vShutEnd <= returned {
		e.errs = append(e.errs, isErr(errSchedMemberShutdown, 0, true))
	}
	if vServeFailed && vServeEnd <= returned {
		if s.serve == servePanics {
			e.errs = append(e.errs, says("Serve's panic", "Serve panicked"))
		} else {
			e.errs = append(e.errs, isErr(errSchedServe, 1, s.group))
		}
	}
	if wServeFailed && wServeEnd <= returned {
		e.errs = append(e.errs, isErr(errSchedMember, 0, true))
	}
	// Err stays exactly Shutdown's error when it is the only one (rule 6);
	// a clean drain with a failure returns Serve's error as it is (rule 4).
	e.exact = len(e.errs) == 1 && !s.group && (kind == failedStop && vShutErr == "error" || kind == cleanDrain)
	return e
}

// servedFirst is rules 8 and 9: Serve returned before any trigger.
func (s schedule) servedFirst() expectation {
	e := expectation{kind: servedFirst, at: s.serveEnd}
	if s.serve == serveReturnsNil {
		return e
	}
	// Close is called, bounded by the grace; Serve's error is returned as
	// it is unless Close fails (rule 8).
	e.closes = 1
	if s.serve == servePanics {
		e.errs = append(e.errs, says("Serve's panic", "Serve panicked"))
	} else {
		e.errs = append(e.errs, isErr(errSchedServe, -1, false))
	}
	switch s.close {
	case closeFails:
		e.errs = append(e.errs, isErr(errSchedClose, -1, false))
	case closePanics:
		e.errs = append(e.errs, says("Close's panic", "Close panicked"))
	case closeHangs:
		e.at += closeGrace
		e.errs = append(e.errs, says("stuck", "lameduck: Close did not return within"))
	}
	e.exact = len(e.errs) == 1 && s.serve == serveFails
	return e
}

// isErr wants target, named as the Group's member i when in a group.
func isErr(target error, member int, group bool) want {
	desc := target.Error()
	name := ""
	if group && member >= 0 {
		name = fmt.Sprintf("lameduck: Group: server %d: ", member)
		desc = name + desc
	}
	return want{desc, func(err error) bool {
		return errors.Is(err, target) && strings.HasPrefix(err.Error(), name)
	}}
}

func says(desc, substr string) want {
	return want{desc + " (" + substr + ")", func(err error) bool { return strings.Contains(err.Error(), substr) }}
}

// joinNames lists names as the stuck error does: "a, b and c".
func joinNames(names []string) string {
	list := strings.Join(names, ", ")
	if i := strings.LastIndex(list, ", "); i >= 0 {
		list = list[:i] + " and " + list[i+2:]
	}
	return list
}
