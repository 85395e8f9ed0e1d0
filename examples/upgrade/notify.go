package main

import (
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The messages this program sends to systemd's notification socket (see
// sd_notify(3)). daemon.SdNotify does nothing when NOTIFY_SOCKET is unset,
// so they cost nothing outside systemd.

// readyMessage says the service is up. MAINPID matters after a tableflip
// upgrade: the new process is not the one systemd started, and systemd
// must follow it rather than take the old one's exit for the service's
// (the unit needs NotifyAccess=all for that).
func readyMessage() string {
	return fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())
}

// stoppingMessage says the service is stopping, and asks systemd to wait
// for the whole lame-duck budget. systemd applies the extension only once
// the unit's TimeoutStopSec has run out, so it is safe to send on every
// stop: with TimeoutStopSec above the budget (as it should be) it changes
// nothing; below it, it keeps systemd's SIGKILL from cutting the drain.
func stoppingMessage(budget time.Duration) string {
	return fmt.Sprintf("STOPPING=1\nEXTEND_TIMEOUT_USEC=%d", budget.Microseconds())
}

// notify sends msg to systemd, if it listens; failures are reported, not
// fatal, since the service works without them.
func notify(msg string) error {
	_, err := daemon.SdNotify(false, msg)
	return err
}
