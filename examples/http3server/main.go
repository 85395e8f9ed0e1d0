// Command http3server serves HTTP/1.1 and HTTP/2 over TLS on a TCP port and
// HTTP/3 on the UDP port of the same number, advertises HTTP/3 to TCP
// clients with Alt-Svc, and stops all three without dropping a request: on
// SIGTERM or Ctrl-C both servers drain together, under one lameduck Runner
// and one lame-duck period, and the process exits.
//
// Without -cert and -key it makes a self-signed certificate for localhost
// when it starts.
//
// Exit status: 0 after a clean drain, 1 when a server failed or the drain
// had to cut something (an HTTP/3 client that kept its connection past its
// linger), 2 when the period ran out or a second signal forced the stop.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/lameduckhttp3"
	"github.com/golang/glog"
	"github.com/quic-go/quic-go/http3"
)

func main() {
	addr := flag.String("addr", ":8443", "address to listen on, for TCP and UDP alike")
	period := flag.Duration("period", 10*time.Second, "the most time the drain may take")
	certFile := flag.String("cert", "", "PEM certificate file (with -key); default: a self-signed certificate for localhost")
	keyFile := flag.String("key", "", "PEM key file (with -cert)")
	// Phases go to stderr unless the user asks glog for files.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*addr, *period, *certFile, *keyFile))
}

func run(addr string, period time.Duration, certFile, keyFile string) int {
	cert, err := certificate(certFile, keyFile)
	if err != nil {
		return fail(err)
	}
	ln, pc, err := listen(addr)
	if err != nil {
		return fail(err)
	}
	mux := routes()
	h3 := &http3.Server{
		Handler:   mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		// The port Alt-Svc names; without it, that of the listener.
		Port: pc.LocalAddr().(*net.UDPAddr).Port,
	}
	h12 := &http.Server{
		Handler:           advertise(h3, mux), // adds Alt-Svc with h3.SetQUICHeaders
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}

	err = lameduck.Run(context.Background(),
		// Neither server depends on the other: they drain at once.
		lameduck.ParallelGroup(
			lameduck.Member("tcp", lameduck.FromHTTPListener(h12, ln)),
			lameduck.Member("quic", lameduckhttp3.FromHTTP3(h3, pc)),
		),
		lameduck.Period(period),
		// Both sockets are bound and SIGTERM is handled: only now is it
		// safe to say so.
		lameduck.WithReady(func() { fmt.Printf("listening on %s\n", ln.Addr()) }),
	)
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}

func fail(err error) int {
	glog.Errorf("%v", err)
	glog.Flush()
	return 1
}

// listen binds TCP on addr and UDP on the same host and port number. With
// port 0 the system picks the TCP port, which may be taken for UDP: then it
// tries again.
func listen(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		_, bound, _ := net.SplitHostPort(ln.Addr().String())
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, bound))
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" || try == 10 {
			return nil, nil, err
		}
	}
}

// advertise adds the Alt-Svc header that tells TCP clients HTTP/3 is on
// the UDP port, while HTTP/3 is served: not before its listener is up, nor
// once its drain has begun (SetQUICHeaders then has no port to name).
func advertise(h3 *http3.Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h3.SetQUICHeaders(w.Header()); err != nil && !errors.Is(err, http3.ErrNoAltSvcPort) {
			glog.Warningf("Alt-Svc: %v", err)
		}
		next.ServeHTTP(w, r)
	})
}
