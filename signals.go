package lameduck

import (
	"os"
	"os/signal"
)

// signalSource is where a Runner gets its signals from. Production code uses
// the os/signal package; tests inject a fake so that they neither send real
// signals to themselves nor depend on the timing of signal delivery.
type signalSource interface {
	Notify(c chan<- os.Signal, sigs ...os.Signal)
	Stop(c chan<- os.Signal)
}

type osSignals struct{}

func (osSignals) Notify(c chan<- os.Signal, sigs ...os.Signal) { signal.Notify(c, sigs...) }
func (osSignals) Stop(c chan<- os.Signal)                      { signal.Stop(c) }
