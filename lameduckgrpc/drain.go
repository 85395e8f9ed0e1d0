package lameduckgrpc

import (
	"cmp"
	"slices"
	"time"
)

// drain begins the drain: every stream open is told, at once or over the
// Spread window, oldest first, and so is every stream that opens later.
// Calls after the first do nothing.
func (s *Streams) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.beginLocked() {
		return
	}
	open := make([]*stream, 0, len(s.open))
	for st := range s.open {
		open = append(open, st)
	}
	slices.SortFunc(open, func(a, b *stream) int { return cmp.Compare(a.seq, b.seq) })
	for k, st := range open {
		turn := time.Duration(float64(s.spread) * float64(k) / float64(len(open)))
		if turn <= 0 {
			s.tell(st)
			continue
		}
		st.turn = time.AfterFunc(turn, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.tell(st)
		})
	}
}

// stop is called when Close is about to stop the server, which cancels
// every stream's context. The streams not told yet are told now, so that a
// handler that watches only Draining sees it too, and none is ended by the
// interceptor any more: whatever is still open is cut by Close, and counts
// as Cancelled when it ends.
func (s *Streams) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beginLocked()
	s.stopped = true
	for st := range s.open {
		s.tell(st)
	}
}

// beginLocked marks the drain as begun and tells the unary RPCs; it reports
// false if it had begun already. The caller holds s.mu.
func (s *Streams) beginLocked() bool {
	if s.draining {
		return false
	}
	s.draining = true
	close(s.unary)
	return true
}
