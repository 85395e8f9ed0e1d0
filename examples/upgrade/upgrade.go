package main

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/golang/glog"
)

// upgrades carries out the upgrades SIGHUP asks for, one at a time, and
// decides, when lame-duck mode begins, what the stop means for the service.
//
// A tableflip upgrade shares the listening socket itself, not a copy of its
// queue: once the new process is started, it holds the socket and may
// accept from it before it is ready. Aborting the upgrade (tableflip's
// Stop) kills the new process with SIGKILL, which resets every connection
// it accepted and, once this process has closed its own descriptor, every
// connection still queued on the socket. So a stop that comes while an
// upgrade is under way does not abort it: this process goes on serving
// while it waits, within the lame-duck period, for the upgrade to end.
// If the new process serves, the stop is a hand-over: this process drains
// and exits and the service goes on in the new one, as tableflip has it
// (the signal asked this process to go). If the upgrade fails, the stop is
// the service's. Only when the period runs out, or a second signal forces
// the stop, is the new process killed.
type upgrades struct {
	src      *source
	budget   time.Duration // what STOPPING=1 asks systemd to wait for
	handOver func()        // begins lame-duck mode after an upgrade

	mu      sync.Mutex
	closed  bool          // lame-duck mode has begun: no upgrade starts
	running chan struct{} // closed when the upgrade under way ends; nil if none is
	served  bool          // an upgrade succeeded: a new process serves the socket
}

// loop takes SIGHUPs until ctx is done. It returns once no upgrade is under
// way: at ctx's end it aborts one that still is.
func (u *upgrades) loop(ctx context.Context, hup <-chan os.Signal) {
	if u.src.upg == nil {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				glog.Warningf("SIGHUP ignored: the socket came from %s; restart the service instead", u.src.how)
			}
		}
	}
	var (
		// tableflip refuses to upgrade before the process that started
		// this one has exited; a SIGHUP that comes earlier waits for that.
		parentGone = u.parentGone(ctx)
		pending    bool       // a SIGHUP waits for parentGone
		result     chan error // where the upgrade under way reports; nil if none is
		handedOver bool
	)
	for {
		select {
		case <-ctx.Done():
			if result != nil {
				u.src.stop() // ends Upgrade and kills the new process
				<-result
			}
			return
		case <-parentGone:
			parentGone = nil
			if pending {
				pending = false
				result = u.start()
			}
		case <-hup:
			switch {
			case handedOver:
				glog.Warningf("SIGHUP ignored: this process has handed over to a new one")
			case result != nil || pending:
				glog.Warningf("SIGHUP ignored: an upgrade is under way")
			case parentGone != nil:
				pending = true
				glog.Infof("SIGHUP: the new process starts once the previous one has exited")
			default:
				result = u.start()
			}
		case err := <-result:
			result = nil
			if err != nil {
				glog.Errorf("upgrade failed: %v", err)
			} else {
				handedOver = true
			}
		}
	}
}

// start begins an upgrade, unless lame-duck mode has begun, and returns the
// channel its outcome will be sent on (nil when none began).
func (u *upgrades) start() chan error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		glog.Warningf("SIGHUP ignored: this process is stopping")
		return nil
	}
	running := make(chan struct{})
	u.running = running
	result := make(chan error, 1)
	glog.Infof("SIGHUP: starting a new process")
	go func() {
		err := u.src.upg.Upgrade()
		u.mu.Lock()
		if err == nil {
			u.served = true
		}
		stopping := u.closed
		u.running = nil
		u.mu.Unlock()
		close(running)
		// When lame-duck mode has begun already, settle is waiting for
		// this outcome and says what it means.
		if err == nil && !stopping {
			glog.Infof("the new process serves; draining this one")
			u.handOver()
		}
		result <- err
	}()
	return result
}

// parentGone returns a channel that is closed once the process that
// started this one has exited, or nil if there is none.
func (u *upgrades) parentGone(ctx context.Context) <-chan struct{} {
	if !u.src.upg.HasParent() {
		return nil
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		switch err := u.src.upg.WaitForParent(ctx); {
		case ctx.Err() != nil:
		case err != nil:
			glog.Warningf("the previous process: %v", err)
		default:
			glog.Infof("the previous process has exited")
		}
	}()
	return gone
}

// settle is the first pre-shutdown step. It rules out upgrades from now on
// and, as the type's comment says, waits for one under way to end. It then
// leaves the socket to a new process that serves it, or else stops the
// service: tableflip lets go of its copy of the socket, so that the port
// closes with the server's listener, and systemd hears STOPPING=1.
func (u *upgrades) settle(ctx context.Context) error {
	u.mu.Lock()
	u.closed = true
	running, served := u.running, u.served
	u.mu.Unlock()
	if served {
		// Lame-duck mode began with the hand-over, or with a signal that
		// came as it did.
		return nil
	}
	if running != nil {
		glog.Infof("stop during an upgrade: waiting for the new process to serve, within the period")
		select {
		case <-running:
		case <-ctx.Done():
			glog.Warningf("the lame-duck period ended before the new process served: aborting the upgrade, which kills it")
			u.stopService()
			return ctx.Err()
		}
		u.mu.Lock()
		served = u.served
		u.mu.Unlock()
		if served {
			glog.Infof("the new process serves; this one hands over to it instead of stopping the service")
			return nil
		}
		glog.Infof("the upgrade failed; stopping the service")
	}
	u.stopService()
	return nil
}

func (u *upgrades) stopService() {
	u.src.stop()
	if err := notify(stoppingMessage(u.budget)); err != nil {
		glog.Warningf("sd_notify: %v", err)
	}
}
