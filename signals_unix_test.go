//go:build unix

package lameduck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Signal storms: real signals, sent from several goroutines at once, racing
// the Runner's own signal.Notify and signal.Stop. Every round must enter
// lame-duck mode exactly once, and nothing may panic (a send on a closed
// channel would).
func TestSignalStorm(t *testing.T) {
	// While this channel is registered, a SIGUSR2 that arrives after a
	// Runner has removed its handler is caught here instead of killing the
	// test binary.
	keeper := make(chan os.Signal, 64)
	signal.Notify(keeper, syscall.SIGUSR2)
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		for range keeper {
		}
	}()
	defer func() {
		signal.Stop(keeper)
		close(keeper)
		<-keeperDone
	}()

	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	outcomes := map[string]int{}
	for round := range rounds {
		var shutdowns atomic.Int32
		stop := make(chan struct{})
		var once sync.Once
		srv := ServerFuncs{
			ServeFunc: func(context.Context) error { <-stop; return nil },
			ShutdownFunc: func(context.Context) error {
				shutdowns.Add(1)
				once.Do(func() { close(stop) })
				return nil
			},
			CloseFunc: func() error { once.Do(func() { close(stop) }); return nil },
		}
		r, err := NewRunner(srv, Signals(syscall.SIGUSR2), WithoutLogger(), Period(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(context.Background()) }()
		<-r.Ready()
		var storm sync.WaitGroup
		for range 1 + round%5 {
			storm.Go(func() { syscall.Kill(syscall.Getpid(), syscall.SIGUSR2) })
		}
		err = <-done
		storm.Wait()

		var lde *LameDuckError
		switch {
		case err == nil:
			outcomes["drained"]++
		case errors.As(err, &lde) && lde.Expired:
			outcomes["cut short by a second signal"]++
		default:
			t.Fatalf("round %d: Run = %v", round, err)
		}
		select {
		case <-r.LameDuck():
		default:
			t.Fatalf("round %d: Run returned without entering lame-duck mode", round)
		}
		// A second signal may end the period before Shutdown is called; a
		// clean drain must have called it once; nothing may call it twice.
		if n := shutdowns.Load(); n > 1 || err == nil && n != 1 {
			t.Fatalf("round %d: Shutdown called %d times (Run = %v)", round, n, err)
		}
	}
	t.Logf("%d rounds: %v", rounds, outcomes)
}

// After Run returns, its signal handler is gone: a copy of this test binary
// runs a Runner to the end and then waits; SIGTERM must kill it as if it
// had never handled signals. This is the proof that signal.Stop ran.
func TestSignalHandlerRemovedAfterRun(t *testing.T) {
	if os.Getenv("LAMEDUCK_REEXEC") == "after-run" {
		reexecChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalHandlerRemovedAfterRun$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LAMEDUCK_REEXEC=after-run", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() && lines.Text() != "Run returned" {
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		for lines.Scan() {
		}
		exited <- cmd.Wait()
	}()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("the child survived SIGTERM: Run left its signal handler installed")
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v, want killed by SIGTERM", cmd.ProcessState)
	}
}

func reexecChild() {
	stop := make(chan struct{})
	srv := ServerFuncs{
		ServeFunc:    func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error { close(stop); return nil },
	}
	r, err := NewRunner(srv, WithoutLogger()) // default signals: SIGINT, SIGTERM
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-r.Ready(); cancel() }()
	if err := r.Run(ctx); err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	fmt.Println("Run returned")
	time.Sleep(time.Minute) // SIGTERM should end this at once
	os.Exit(4)
}
