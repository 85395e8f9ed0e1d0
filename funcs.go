package lameduck

import (
	"context"
	"errors"
)

// ServerFuncs makes a [Server] out of closures, for servers that do not
// already have Serve, Shutdown and Close methods. ServeFunc is required; a nil
// ShutdownFunc or CloseFunc does nothing and returns nil.
//
// The closures must keep the Server contract: ShutdownFunc and CloseFunc must
// make ServeFunc return.
type ServerFuncs struct {
	ServeFunc    func(context.Context) error
	ShutdownFunc func(context.Context) error
	CloseFunc    func() error
}

var errNoServeFunc = errors.New("lameduck: ServerFuncs has a nil ServeFunc")

func (f ServerFuncs) validate() error {
	if f.ServeFunc == nil {
		return errNoServeFunc
	}
	return nil
}

// Serve calls ServeFunc, or returns an error if it is nil.
func (f ServerFuncs) Serve(ctx context.Context) error {
	if f.ServeFunc == nil {
		return errNoServeFunc
	}
	return f.ServeFunc(ctx)
}

// Shutdown calls ShutdownFunc if it is set.
func (f ServerFuncs) Shutdown(ctx context.Context) error {
	if f.ShutdownFunc == nil {
		return nil
	}
	return f.ShutdownFunc(ctx)
}

// Close calls CloseFunc if it is set.
func (f ServerFuncs) Close() error {
	if f.CloseFunc == nil {
		return nil
	}
	return f.CloseFunc()
}
