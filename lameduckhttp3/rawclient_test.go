package lameduckhttp3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"testing"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
)

// rawClient speaks just enough HTTP/3 over a QUIC connection of its own to
// see what quic-go's client hides: the GOAWAY frame, how a stream is
// refused, and a client that never closes its connection, whatever the
// server says (quic-go's client closes it once it has a GOAWAY and no
// request open).
type rawClient struct {
	qc       *quic.Conn
	settings chan struct{} // closed when the server's SETTINGS arrive
	goaway   chan uint64   // the stream ID of each GOAWAY the server sends
}

// HTTP/3 frame and stream types (RFC 9114, sections 6.2 and 7.2).
const (
	frameData     = 0x0
	frameHeaders  = 0x1
	frameSettings = 0x4
	frameGoAway   = 0x7
	streamControl = 0x0
)

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	_, pool := certs()
	qc, err := quic.DialAddr(context.Background(), addr, &tls.Config{RootCAs: pool, NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{qc: qc, settings: make(chan struct{}), goaway: make(chan uint64, 4)}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	// Every endpoint opens a control stream that begins with SETTINGS.
	ctrl, err := qc.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	b := quicvarint.Append(nil, streamControl)
	b = quicvarint.Append(b, frameSettings)
	b = quicvarint.Append(b, 0)
	if _, err := ctrl.Write(b); err != nil {
		t.Fatal(err)
	}
	go c.readControl()
	// quic-go's server sends its SETTINGS once it has taken the
	// connection in: from then on its drain knows of it.
	select {
	case <-c.settings:
	case <-qc.Context().Done():
		t.Fatalf("the connection closed before the server's SETTINGS came: %v", context.Cause(qc.Context()))
	}
	return c
}

// readControl finds the server's control stream among its unidirectional
// streams and passes on every GOAWAY on it, until the connection closes.
func (c *rawClient) readControl() {
	for {
		str, err := c.qc.AcceptUniStream(context.Background())
		if err != nil {
			return
		}
		r := quicvarint.NewReader(str)
		if typ, err := quicvarint.Read(r); err != nil || typ != streamControl {
			continue // QPACK streams and the like: not read
		}
		go func() {
			br := bufio.NewReader(str)
			for {
				typ, payload, err := readFrame(br)
				if err != nil {
					return
				}
				switch typ {
				case frameSettings:
					close(c.settings)
				case frameGoAway:
					if id, err := quicvarint.Read(bytes.NewReader(payload)); err == nil {
						c.goaway <- id
					}
				}
			}
		}()
	}
}

// get sends a GET request for path on a new stream.
func (c *rawClient) get(path string) (*quic.Stream, error) {
	str, err := c.qc.OpenStreamSync(context.Background())
	if err != nil {
		return nil, err
	}
	var block bytes.Buffer
	enc := qpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", c.qc.RemoteAddr().String()}, {":path", path}} {
		if err := enc.WriteField(qpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return nil, err
		}
	}
	b := quicvarint.Append(nil, frameHeaders)
	b = quicvarint.Append(b, uint64(block.Len()))
	b = append(b, block.Bytes()...)
	if _, err := str.Write(b); err != nil {
		return nil, err
	}
	return str, str.Close()
}

// readBody reads a response from str and returns its body: the payloads of
// its DATA frames, up to the end of the stream.
func readBody(str *quic.Stream) ([]byte, error) {
	br := bufio.NewReader(str)
	var body []byte
	for {
		typ, payload, err := readFrame(br)
		switch {
		case err == io.EOF:
			return body, nil
		case err != nil:
			return body, err
		case typ == frameData:
			body = append(body, payload...)
		}
	}
}

// readFrame reads one HTTP/3 frame. It returns io.EOF only at a frame
// boundary.
func readFrame(br *bufio.Reader) (typ uint64, payload []byte, err error) {
	if typ, err = quicvarint.Read(br); err != nil {
		return 0, nil, err
	}
	n, err := quicvarint.Read(br)
	if err != nil {
		return 0, nil, unexpected(err)
	}
	if n > 1<<24 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, unexpected(err)
	}
	return typ, payload, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
