package lameduck

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"testing"
)

var deliveryImpl = flag.String("delivery.impl", "lameduck", "the server the delivery oracle and the GOAWAY check drive: lameduck (FromHTTP) or net/http (its own Shutdown, a reference)")

// serverUnderTest makes the Server that the delivery tests drive of srv.
// With -delivery.impl=net/http it is net/http's own Shutdown and Close,
// which show that what the tests demand can be met.
func serverUnderTest(t *testing.T, srv *http.Server) (svr Server, addr func() net.Addr) {
	switch *deliveryImpl {
	case "lameduck":
		hs := FromHTTP(srv)
		return hs, hs.Addr
	case "net/http":
	default:
		t.Fatalf("-delivery.impl=%s, want lameduck or net/http", *deliveryImpl)
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(context.Context) error {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return ServerFuncs{ServeFunc: serve, ShutdownFunc: srv.Shutdown, CloseFunc: srv.Close}, ln.Addr
}
