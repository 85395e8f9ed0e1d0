// Package lameduckhttp3 drains an HTTP/3 server, quic-go's [http3.Server],
// under a [lameduck.Runner], beside [lameduck.FromHTTP] and within the same
// lame-duck period.
//
// quic-go's own Shutdown sends GOAWAY on every connection and refuses the
// streams that come after it, then waits for every client to close its
// connection; a client that does not (one that keeps connections for later,
// or ignores GOAWAY) holds the drain to the end of the period. The Server
// that [FromHTTP3] makes closes such connections itself, and says what that
// may have cost:
//
//   - When the drain begins, every connection gets its GOAWAY, and a
//     request stream opened after the GOAWAY is refused with
//     H3_REQUEST_REJECTED, which tells its client to retry it elsewhere. New
//     connections are refused at once with QUIC's CONNECTION_REFUSED: the
//     server's listener is its own, and stays open through the drain to say
//     so (quic-go's Shutdown would close it, leaving new clients to time
//     out). [lameduck.Draining] of each request's context is closed.
//   - Requests in flight finish. A request is in flight from its handler's
//     call until quic-go has ended its response stream.
//   - A connection with no request in flight is left to its client for a
//     linger: three QUIC probe timeouts (RFC 9002), at least one second if
//     the connection carried a response. A client that honours GOAWAY closes
//     its connection once it has read its last response (quic-go's client
//     does so at once), and the drain ends when the last one has.
//   - A connection still open when its linger runs out is closed with
//     H3_NO_ERROR, as RFC 9114 asks of a graceful shutdown.
//   - When the period runs out, Close closes every connection; one with
//     requests in flight gets H3_REQUEST_CANCELLED.
//
// QUIC has no gentle close: closing a connection ends its streams at once,
// and its client may drop what it had received but not yet read (quic-go's
// client does). A server cannot see what its client has read. So when the
// drain closes a connection that carried a response, it counts that
// connection as cut, and Shutdown returns an error that says so; Run then
// returns a [*lameduck.LameDuckError]. A connection that never carried a
// request costs nothing to close. Run returns nil only when every request
// ended within the period and every connection that carried a response was
// closed by its client; every response whose handler returned has then
// reached its client whole.
//
// The library itself does not import quic-go; this module does, and is a
// Go module of its own so that programs without HTTP/3 do not download it.
package lameduckhttp3
