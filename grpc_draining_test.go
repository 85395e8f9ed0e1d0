package lameduck

import (
	"context"
	"testing"
)

// drainingMarker is the interface lameduckgrpc asserts on FromGRPC's Server.
type drainingMarker interface {
	WithDraining(ctx context.Context, draining chan struct{}) context.Context
}

// A context marked through FromGRPC's Server gives Draining the channel it
// was marked with, and keeps the values it had; an unmarked one gives nil.
func TestFromGRPCWithDraining(t *testing.T) {
	m, ok := FromGRPC(newFakeGRPC(), &fakeListener{}).(drainingMarker)
	if !ok {
		t.Fatal("FromGRPC's Server has no WithDraining method")
	}
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "kept")
	ch := make(chan struct{})
	ctx := m.WithDraining(parent, ch)
	if got := Draining(ctx); got != ch {
		t.Errorf("Draining(marked ctx) = %v, want the channel it was marked with (%v)", got, ch)
	}
	if got := ctx.Value(key{}); got != "kept" {
		t.Errorf("marked ctx lost a value of its parent: got %v, want %q", got, "kept")
	}
	if got := Draining(parent); got != nil {
		t.Errorf("Draining(unmarked ctx) = %v, want nil", got)
	}
}
