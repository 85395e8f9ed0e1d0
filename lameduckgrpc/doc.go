// Package lameduckgrpc ends a gRPC server's streams well when
// [github.com/b583c413/lameduck] drains the server.
//
// A stream (a watch, a subscription, a bidirectional session) is an RPC in
// flight for as long as its client keeps it open, and gRPC's GracefulStop
// waits for every one: left alone, a server with streams open drains until
// its lame-duck period runs out and is then closed by force. [Streams] is a
// pair of interceptors and a [lameduck.Server] that work together:
//
//   - [lameduck.Draining] works on a stream's context: its channel is closed
//     when the stream's drain begins, once GracefulStop has begun (it sends
//     GOAWAY), so that a handler can end the stream cleanly and its client
//     reconnect elsewhere. It works for unary handlers too (a long poll).
//   - With [Grace], a stream still open that long after it was told is
//     ended: its context is cancelled and its client gets codes.Unavailable
//     "server going away", a status well-behaved clients reconnect on. The
//     drain then ends within the period instead of running into it.
//   - With [Spread], the streams are told one after another over a window
//     instead of all at once, so that their clients do not all reconnect to
//     the remaining servers in the same instant.
//   - [Streams.Counts] says how many streams ended on their own and how many
//     were ended.
//
// A stream ended by its Grace is not cut in the sense of lameduck's rule 15:
// its handler returned and its client got a status that sends it elsewhere,
// so Run still returns nil when every RPC ended within the period. What Run
// reports as cut is what the period's end (gRPC's Stop) closes under a
// handler.
//
// The library itself does not import gRPC; this module does, and is a Go
// module of its own so that programs without gRPC do not download it.
package lameduckgrpc
