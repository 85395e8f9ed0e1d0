package lameduck

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGlogFlagClash shows what the README's "Seeing the logs" says of glog's
// global flags, with real programs: importing lameduck registers glog's -v
// (and the rest) on the default flag set, so a program with a -v of its own
// there panics at start; the same program with a FlagSet of its own runs.
// It also shows the cost of glog's defaults (each run leaves a file in
// $TMPDIR) and the two ways out: logtostderr, or a logger other than glog.
func TestGlogFlagClash(t *testing.T) {
	bin := buildPrograms(t, "./testdata/vflag", "./testdata/ownflags")

	tests := []struct {
		name       string
		prog       string
		args       []string
		wantExit   int
		wantStdout string
		wantStderr string // a part of it
		wantFiles  bool   // glog's files in $TMPDIR
	}{{
		name:       "a -v of its own on the default flag set panics at start",
		prog:       "vflag",
		args:       []string{"-v"},
		wantExit:   2,
		wantStderr: "flag redefined: v",
	}, {
		name:       "a -v in a FlagSet of its own works, and glog's defaults leave files in $TMPDIR",
		prog:       "ownflags",
		args:       []string{"-v", "-logs=glog"},
		wantStdout: "verbose\n",
		wantFiles:  true,
	}, {
		name:       "logtostderr set in code sends glog's lines to stderr and leaves no file",
		prog:       "ownflags",
		args:       []string{"-v", "-logs=stderr"},
		wantStdout: "verbose\n",
		wantStderr: "] lameduck: serving;",
	}, {
		name:       "WithSlog leaves glog nothing to write, so no file",
		prog:       "ownflags",
		args:       []string{"-v", "-logs=slog"},
		wantStdout: "verbose\n",
		wantStderr: `msg="lameduck: serving"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir() // glog writes its files to $TMPDIR
			cmd := exec.Command(filepath.Join(bin, tt.prog), tt.args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tt.wantExit {
				t.Errorf("exit status: got %d, want %d\nstderr:\n%s", exit, tt.wantExit, &stderr)
			}
			if got := stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout: got %q, want %q", got, tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr does not contain %q; got:\n%s", tt.wantStderr, &stderr)
			}
			files, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(files) > 0; got != tt.wantFiles {
				t.Errorf("files in $TMPDIR: got %v, want some: %v", files, tt.wantFiles)
			}
		})
	}
}
