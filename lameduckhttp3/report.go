package lameduckhttp3

// ReportWork gives the lameduck Runner's stop report the drain's books:
// requests (from the handler's call to the end of the response stream) and
// connections, open now, ended, and cut. A request is cut when Close ends
// it; a connection is cut when Close, or the drain once its client had
// kept it open past its linger, closed it after it carried a response
// (whether its client had read that response whole is not known). A
// request or connection that its client ended is not cut.
func (s *server) ReportWork(add func(kind, protocol string, inFlight, done, cut int)) {
	s.mu.Lock()
	b, open := s.book, len(s.conns)
	s.mu.Unlock()
	add("requests", "HTTP/3", b.reqs, b.reqDone, b.reqCut)
	add("connections", "HTTP/3", open, b.connDone, b.connCut)
}
