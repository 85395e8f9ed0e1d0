package lameduckgrpc

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
)

// frame is one HTTP/2 frame a client read from its server, in the order
// read.
type frame struct {
	conn      int // which connection, in the order dialled
	typ       http2.FrameType
	stream    uint32
	endStream bool // a HEADERS frame that ends its stream: the RPC's status
	at        time.Time
}

// frameTap records the frames that a grpc-go client reads from its
// connections: WithDialer makes a dial option that hands grpc-go the
// connections it dials through a net.Conn that copies what it reads to an
// HTTP/2 frame parser.
type frameTap struct {
	mu     sync.Mutex
	conns  int
	frames []frame
	wg     sync.WaitGroup // the parsers
}

func (ft *frameTap) dialOption() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		ft.mu.Lock()
		id := ft.conns
		ft.conns++
		ft.mu.Unlock()
		ft.wg.Go(func() { ft.parse(id, pr) })
		return &tappedConn{Conn: c, w: pw}, nil
	})
}

func (ft *frameTap) parse(conn int, r *io.PipeReader) {
	defer r.Close()
	fr := http2.NewFramer(nil, r)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			io.Copy(io.Discard, r) // the connection must not block on its copy
			return
		}
		h := f.Header()
		rec := frame{conn: conn, typ: h.Type, stream: h.StreamID, at: time.Now()}
		if hf, ok := f.(*http2.HeadersFrame); ok {
			rec.endStream = hf.StreamEnded()
		}
		ft.mu.Lock()
		ft.frames = append(ft.frames, rec)
		ft.mu.Unlock()
	}
}

// wait waits until every connection has closed and its frames are parsed,
// and returns the frames of each connection.
func (ft *frameTap) wait() [][]frame {
	ft.wg.Wait()
	ft.mu.Lock()
	defer ft.mu.Unlock()
	byConn := make([][]frame, ft.conns)
	for _, f := range ft.frames {
		byConn[f.conn] = append(byConn[f.conn], f)
	}
	return byConn
}

// tappedConn copies what it reads to w, and closes w when it is closed.
type tappedConn struct {
	net.Conn
	w    *io.PipeWriter
	once sync.Once
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.w.Write(p[:n])
	}
	if err != nil {
		c.once.Do(func() { c.w.CloseWithError(err) })
	}
	return n, err
}

func (c *tappedConn) Close() error {
	c.once.Do(func() { c.w.Close() })
	return c.Conn.Close()
}

// firstGoAwayAndEnd returns, of the frames read on one connection, the
// first GOAWAY and the first frame that ended a stream (its status, or
// RST_STREAM); nil for none.
func firstGoAwayAndEnd(frames []frame) (goAway, end *frame) {
	for i := range frames {
		f := &frames[i]
		switch {
		case f.typ == http2.FrameGoAway && goAway == nil:
			goAway = f
		case (f.endStream || f.typ == http2.FrameRSTStream) && end == nil:
			end = f
		}
	}
	return goAway, end
}
