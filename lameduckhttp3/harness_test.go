package lameduckhttp3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/internal/testcert"
	"github.com/quic-go/quic-go/http3"
)

// certs returns the tests' self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func certs() (tls.Certificate, *x509.CertPool) {
	c, err := testcert.Get()
	if err != nil {
		panic(err)
	}
	return c.TLS, c.Pool
}

// running is one Runner serving an HTTP/3 server on a loopback port.
type running struct {
	addr    string
	r       *lameduck.Runner
	trigger context.CancelFunc // begins lame-duck mode
	done    chan error         // what Run returned
}

// serve runs h over HTTP/3 under a Runner with the given period.
func serve(t testing.TB, h http.Handler, period time.Duration) *running {
	t.Helper()
	cert, _ := certs()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	r, err := lameduck.NewRunner(FromHTTP3(srv, pc), lameduck.Signals(), lameduck.WithoutLogger(), lameduck.Period(period))
	if err != nil {
		t.Fatal(err)
	}
	ctx, trigger := context.WithCancel(context.Background())
	run := &running{addr: pc.LocalAddr().String(), r: r, trigger: trigger, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	<-r.Ready()
	t.Cleanup(func() {
		trigger()
		<-run.done
	})
	return run
}

// stop begins lame-duck mode and returns what Run returned.
func (run *running) stop() error {
	run.trigger()
	return run.wait()
}

// wait returns what Run returned, once it has.
func (run *running) wait() error {
	err := <-run.done
	run.done <- err // for the next wait, and the cleanup
	return err
}

// workRow is a row of the stop report's Work.
type workRow = struct {
	Server, Kind, Protocol string
	InFlight, AtLameDuck   int
	Finished, Cut, Held    int
}

// work returns the stop report's row of kind (requests or connections).
func (run *running) work(t testing.TB, kind string) workRow {
	t.Helper()
	for _, w := range run.r.Report().Work {
		if w.Kind == kind && w.Protocol == "HTTP/3" {
			return w
		}
	}
	t.Fatalf("the stop report has no HTTP/3 %s row: %+v", kind, run.r.Report().Work)
	return workRow{}
}

// client is quic-go's own HTTP/3 client, trusting the test certificate.
func client(t testing.TB) *http.Client {
	_, pool := certs()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}
