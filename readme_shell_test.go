//go:build unix

package lameduck

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Twice by default, in the same directories, as a reader who tries again:
// what the first run leaves behind must not fool the second.
var shellRuns = flag.Int("readme.shell.runs", 2, "how many times TestReadmeStopSnippets runs each snippet in each shell mode")

// isStopSnippet reports whether b is a shell block that starts a program
// in the background and signals it: what a reader pastes to watch a stop.
func isStopSnippet(b block) bool {
	switch b.lang {
	case "", "sh", "bash", "shell":
	default:
		return false
	}
	return strings.Contains(b.text, "kill -TERM") && background.MatchString(b.text)
}

// background matches a command list sent to the background (a lone &).
var background = regexp.MustCompile(`(?m)(^|[^&])&(\s*$|\s+[^&\s])`)

var exitStatusLine = regexp.MustCompile(`(?m)^exit status (\d+)$`)

// TestReadmeStopSnippets pastes, as a reader would, every shell block of
// the READMEs that starts a program in the background and sends it SIGTERM,
// and checks that the program drained: the block must print "exit status
// 0", not 143 (killed by the signal before its handler was installed), and
// must leave nothing running.
//
// Each block runs in bash in two modes: as a script (no job control) and
// with `set -m`, as at a terminal, where a background job is a process
// group of its own. Two things are changed so that the test needs nothing
// of the machine: the address :8080 becomes 127.0.0.1:0, and paths under
// /tmp/ (and $TMPDIR) go to a temporary directory. A block in README.md
// that builds "." runs in a module holding the complete program just above
// it; the example READMEs' blocks run at the repository root, as they are
// written.
func TestReadmeStopSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals programs")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("examples/*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)

	type snippet struct {
		block
		program string // the Go program it builds, if it builds "."
	}
	var snippets []snippet
	for _, path := range files {
		var lastProgram string // the last complete Go program above
		for _, b := range fencedBlocks(t, path) {
			if b.lang == "go" && strings.HasPrefix(b.text, "package main") {
				lastProgram = b.text
				continue
			}
			if !isStopSnippet(b) {
				continue
			}
			s := snippet{block: b}
			if regexp.MustCompile(`(?m)go build\b.*\s\.(\s|$)`).MatchString(b.text) {
				if lastProgram == "" {
					t.Fatalf("%s:%d: the block builds \".\" but no Go program comes before it", path, b.line)
				}
				s.program = strings.ReplaceAll(lastProgram, `":8080"`, `"127.0.0.1:0"`)
			}
			snippets = append(snippets, s)
		}
	}
	// README.md's quick start, examples/httpserver's and examples/worker's.
	if len(snippets) < 3 {
		t.Fatalf("found %d stop snippets in %v, want at least 3", len(snippets), files)
	}

	for _, s := range snippets {
		for _, mode := range []struct{ name, prelude string }{
			{"as a script", ""},
			{"with job control", "set -m\n"},
		} {
			t.Run(fmt.Sprintf("%s:%d %s", s.path, s.line, mode.name), func(t *testing.T) {
				t.Parallel()
				tmp := t.TempDir()
				text := strings.ReplaceAll(s.text, "/tmp/", tmp+"/")
				text = strings.ReplaceAll(text, " :8080", " 127.0.0.1:0")
				dir, env := root, []string{"TMPDIR=" + tmp}
				if s.program != "" {
					// The module has lameduck's go.sum, which holds every
					// checksum it needs: no network.
					dir = programModule(t, root, s.program)
					env = append(env, "GOFLAGS=-mod=mod", "GOWORK=off")
				}
				failed := 0
				for i := range *shellRuns {
					out, status := runStopSnippet(t, dir, env, mode.prelude+text)
					if testing.Verbose() {
						t.Logf("run %d printed:\n%s", i+1, out)
					}
					if status != "0" {
						failed++
						if failed == 1 {
							t.Errorf("run %d: got exit status %s, want 0; the block:\n%s\noutput:\n%s", i+1, status, text, out)
						}
					}
				}
				if *shellRuns > 1 {
					t.Logf("%d of %d runs failed", failed, *shellRuns)
				}
			})
		}
	}
}

// programModule writes program into a temporary module that uses this
// repository through a replace directive, and returns its directory.
func programModule(t *testing.T, root, program string) string {
	t.Helper()
	dir := t.TempDir()
	goMod := fmt.Sprintf("module readme.example\n\ngo 1.25\n\nrequire github.com/b583c413/lameduck v0.0.0\n\nreplace github.com/b583c413/lameduck => %s\n", root)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sum, "main.go": []byte(program)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runStopSnippet runs text with bash in dir, with env added to the
// environment, and returns what it printed and the status on its "exit
// status N" line ("none" without one). A snippet that leaves a process
// running, or takes more than a minute, says so in the status.
func runStopSnippet(t *testing.T, dir string, env []string, text string) (output, status string) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// On a timeout the test sends bash SIGTERM; the trap ends the
	// background job's process group (its own under set -m). At the end,
	// whatever is left of that group is killed and reported.
	script := "trap 'kill -KILL -- -$! $! 2>/dev/null; exit 124' TERM\n" + text +
		"\nif kill -KILL -- -$! 2>/dev/null; then echo 'readme test: the job left a process running'; fi\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	// A file, not a pipe: a process the snippet leaves behind cannot keep
	// Wait waiting.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	// Without job control the background job shares bash's process group.
	leftover := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) == nil
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	output = string(data)
	switch m := exitStatusLine.FindAllStringSubmatch(output, -1); {
	case ctx.Err() != nil:
		status = "none (timed out)"
	case len(m) == 0:
		status = fmt.Sprintf("none (bash: %v)", runErr)
	default:
		status = m[len(m)-1][1]
	}
	if leftover || strings.Contains(output, "left a process running") {
		status += " (and a process was left running)"
	}
	return output, status
}
