package lameduck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWorkerBuilderMistakes covers rule 12 for the Worker's configuration
// methods: bad input is recorded and makes NewRunner and Serve fail with an
// error naming it, never a panic.
func TestWorkerBuilderMistakes(t *testing.T) {
	next := func(context.Context) (int, error) { return 0, nil }
	handle := func(context.Context, int) error { return nil }
	release := func(context.Context) ([]int, error) { return nil, nil }
	cases := []struct {
		name string
		w    *Worker[int]
		want string
	}{
		{"Concurrency below 1", FromWorker(next, handle).Concurrency(-1),
			"lameduck: FromWorker: Concurrency: must be at least 1, got -1"},
		{"a nil OnError policy", FromWorker(next, handle).OnError(nil),
			"lameduck: FromWorker: OnError: policy is nil"},
		{"a nil Settle function", FromWorker(next, handle).Settle(nil),
			"lameduck: FromWorker: Settle: function is nil"},
		{"a nil StartSource function", FromWorker(next, handle).StartSource(nil),
			"lameduck: FromWorker: StartSource: function is nil"},
		{"a nil ReleaseSource function", FromWorker(next, handle).ReleaseSource(nil),
			"lameduck: FromWorker: ReleaseSource: function is nil"},
		{"ReleaseSource, then ConcurrentNext", FromWorker(next, handle).ReleaseSource(release).ConcurrentNext(),
			"lameduck: FromWorker: ConcurrentNext and ReleaseSource cannot be combined: release must not run beside a call of next"},
		{"the first mistake is the one reported", FromWorker(nil, handle).Concurrency(0).Settle(nil),
			"lameduck: FromWorker: next is nil"},
		{"a later call does not undo a mistake", FromWorker(next, handle).Concurrency(0).Concurrency(2),
			"lameduck: FromWorker: Concurrency: must be at least 1, got 0"},
		{"methods of a zero Worker", (&Worker[int]{}).Concurrency(2).Settle(func(context.Context, int, error) {}),
			"lameduck: Worker not made by FromWorker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewRunner(c.w); err == nil || err.Error() != c.want {
				t.Errorf("NewRunner = %v, want %q", err, c.want)
			}
			if err := c.w.Serve(context.Background()); err == nil || err.Error() != c.want {
				t.Errorf("Serve = %v, want %q", err, c.want)
			}
		})
	}
	t.Run("methods of a nil Worker return nil, which NewRunner rejects", func(t *testing.T) {
		var w *Worker[int]
		w = w.Concurrency(2).ConcurrentNext().DrainSource().OnError(func(context.Context, int, error) error { return nil }).
			Settle(func(context.Context, int, error) {}).StartSource(func(context.Context) error { return nil }).ReleaseSource(release)
		if w != nil {
			t.Fatalf("got %p, want nil", w)
		}
		if _, err := NewRunner(w); err == nil || err.Error() != "lameduck: nil *lameduck.Worker[int] Server" {
			t.Errorf("NewRunner = %v", err)
		}
		if err := w.Serve(context.Background()); err == nil || err.Error() != "lameduck: nil *lameduck.Worker[int] Server" {
			t.Errorf("Serve = %v", err)
		}
	})
}

// TestWorkerLateConfiguration: a method called while Serve runs changes
// nothing, does not race with Serve (run with -race), and is reported in
// Serve's error.
func TestWorkerLateConfiguration(t *testing.T) {
	jobs := make(chan int)
	handling := make(chan struct{})
	w := FromWorker(ChanSource(jobs), func(context.Context, int) error {
		close(handling)
		return nil
	})
	done := make(chan error)
	go func() { done <- w.Serve(context.Background()) }()
	jobs <- 1
	<-handling // Serve has begun
	if got := w.Concurrency(8).Settle(func(context.Context, int, error) {}); got != w {
		t.Errorf("a late method returned %p, want the Worker, %p", got, w)
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	err := <-done
	want := "lameduck: FromWorker: Concurrency called after Serve began; it changed nothing\n" +
		"lameduck: FromWorker: Settle called after Serve began; it changed nothing"
	if err == nil || err.Error() != want {
		t.Errorf("Serve = %v, want %q", err, want)
	}
}

// TestWorkerHookTypes builds programs that give a Worker[int] hooks for
// another item type: each must fail to compile, naming the mismatch, while
// the same program with the right types builds.
func TestWorkerHookTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	const prelude = `package main

import (
	"context"

	"github.com/b583c413/lameduck"
)

var (
	next   = func(context.Context) (int, error) { return 0, nil }
	handle = func(context.Context, int) error { return nil }
)

func main() {
	w := lameduck.FromWorker(next, handle)
	_ = w
`
	cases := []struct {
		name, code string
		want       string // a regexp the compiler's error must match; empty: it compiles
	}{
		{"right", `w.Concurrency(2).OnError(func(context.Context, int, error) error { return nil }).
		Settle(func(context.Context, int, error) {}).
		ReleaseSource(func(context.Context) ([]int, error) { return nil, nil })`, ""},
		{"onerror", `w.OnError(func(context.Context, string, error) error { return nil })`,
			`cannot use .* \(value of type func\(context\.Context, string, error\) error\) as func\(ctx context\.Context, item int, err error\) error value in argument to w\.OnError`},
		{"settle", `w.Concurrency(2).Settle(func(context.Context, string, error) {})`,
			`cannot use .* \(value of type func\(context\.Context, string, error\)\) as func\(ctx context\.Context, item int, err error\) value in argument to .*\.Settle`},
		{"release", `w.ReleaseSource(func(context.Context) ([]string, error) { return nil, nil })`,
			`cannot use .* \(value of type func\(context\.Context\) \(\[\]string, error\)\) as func\(ctx context\.Context\) \(\[\]int, error\) value in argument to w\.ReleaseSource`},
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	goMod := fmt.Sprintf("module hooks.example\n\ngo 1.25\n\nrequire github.com/b583c413/lameduck v0.0.0\n\nreplace github.com/b583c413/lameduck => %s\n", root)
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"go.mod": goMod, "go.sum": string(sum)}
	for _, c := range cases {
		files[filepath.Join(c.name, "main.go")] = prelude + "\t" + c.code + "\n}\n"
	}
	for name, content := range files {
		path := filepath.Join(mod, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, _ := cmd.CombinedOutput()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The compiler's lines for this case's package: "name/main.go:17:4: ...".
			var lines []string
			for line := range strings.SplitSeq(string(out), "\n") {
				if strings.HasPrefix(line, c.name+string(filepath.Separator)) {
					lines = append(lines, line)
				}
			}
			got := strings.Join(lines, "\n")
			switch {
			case c.want == "" && got != "":
				t.Errorf("the program with the right types does not compile:\n%s", got)
			case c.want != "" && !regexp.MustCompile(c.want).MatchString(got):
				t.Errorf("compiler said:\n%s\nwant a line matching %q\n(all of go build's output:\n%s)", got, c.want, out)
			}
		})
	}
}
