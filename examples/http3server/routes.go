package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/golang/glog"
)

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s\n", r.Proto)
	})
	// /slow?d=300ms&n=1048576 stands in for a request that takes a while:
	// it waits d, then sends n bytes (by default a line).
	mux.HandleFunc("GET /slow", slow)
	return mux
}

func slow(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.FormValue("d"))
	if err != nil || d < 0 {
		http.Error(w, "d must be a duration such as 300ms", http.StatusBadRequest)
		return
	}
	n := -1
	if s := r.FormValue("n"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			http.Error(w, "n must be a number of bytes", http.StatusBadRequest)
			return
		}
	}
	glog.V(1).Infof("slow request over %s: sleeping %v", r.Proto, d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done(): // the client left, or the server was closed
		return
	}
	if n < 0 {
		fmt.Fprintf(w, "slept %v\n", d)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(pattern(n))
}

// pattern is the body /slow sends for n bytes, so that a client can check
// it arrived whole: the bytes 0 to 250, over and over.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}
