package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/cloudflare/tableflip"
	"github.com/coreos/go-systemd/v22/activation"
)

// source is where the listening socket came from, and what can be done
// with it.
type source struct {
	ln  net.Listener
	how string // "systemd", "tableflip" or "listen", for the logs

	// upg is nil unless the socket is shared through tableflip; only then
	// can the process upgrade itself.
	upg *tableflip.Upgrader
}

// open finds the listening socket: the one systemd passed (socket
// activation), else the one tableflip inherited from the parent process
// or, for the first process, bound at addr. Where tableflip does not work
// (Windows), it binds addr itself and cannot upgrade.
func open(addr, pidFile string) (*source, error) {
	// go-systemd checks LISTEN_PID against our pid and clears the variables,
	// so that a process this one starts does not take them for its own.
	lns, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	switch n := len(lns); {
	case n == 1 && lns[0] != nil:
		return &source{ln: lns[0], how: "systemd"}, nil
	case n > 0:
		for _, ln := range lns {
			if ln != nil {
				ln.Close()
			}
		}
		return nil, fmt.Errorf("socket activation passed %d sockets; this program serves exactly one stream socket", n)
	}

	upg, err := tableflip.New(tableflip.Options{PIDFile: pidFile})
	if errors.Is(err, tableflip.ErrNotSupported) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return &source{ln: ln, how: "listen"}, nil
	}
	if err != nil {
		return nil, err
	}
	// An upgraded process gets the socket its parent listened on under
	// the same address; the first one binds it.
	ln, err := upg.Listen("tcp", addr)
	if err != nil {
		upg.Stop()
		return nil, err
	}
	return &source{ln: ln, how: "tableflip", upg: upg}, nil
}

// ready tells the parent, if there is one, that this process serves: the
// parent then hands over (its Exit channel closes).
func (s *source) ready() error {
	if s.upg == nil {
		return nil
	}
	return s.upg.Ready()
}

// stop rules out upgrades and lets go of tableflip's copy of the socket,
// so that once the server has closed its own the port is closed too.
func (s *source) stop() {
	if s.upg != nil {
		s.upg.Stop()
	}
}
