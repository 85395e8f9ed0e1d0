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

// TestDefaultLoggerChildProcess runs a program that uses the default logger
// (glog, with no flags given) and whose drain runs out of time, and checks
// rule 14 where a user would look: the expiry is on stderr, and the INFO
// lines reached glog's file although the program calls os.Exit as soon as
// Run returns.
func TestDefaultLoggerChildProcess(t *testing.T) {
	bin := filepath.Join(buildPrograms(t, "./testdata/glogchild"), "glogchild")
	tmp := t.TempDir() // glog writes its files to $TMPDIR
	cmd := exec.Command(bin, "-period=300ms")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: got %v, want exit status 2 (period expired)\nstderr:\n%s", err, &stderr)
	}

	if got := stderr.String(); !strings.Contains(got, "] lameduck: lame-duck period of 300ms expired") || !strings.HasPrefix(got, "E") {
		t.Errorf("stderr does not show the expiry as an ERROR line; got:\n%s", got)
	}
	if strings.Contains(stderr.String(), "entering lame-duck mode") {
		t.Errorf("stderr has INFO lines, which glog's default flags keep in its file; got:\n%s", &stderr)
	}

	infos, err := filepath.Glob(filepath.Join(tmp, "glogchild.*.INFO.*"))
	if err != nil || len(infos) != 1 {
		entries, _ := os.ReadDir(tmp)
		t.Fatalf("glog's INFO files in $TMPDIR: got %v (%v), want one; $TMPDIR holds %v", infos, err, entries)
	}
	file, err := os.ReadFile(infos[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serving", "entering lame-duck mode", "lame-duck period of 300ms expired", "server closed"} {
		if !bytes.Contains(file, []byte(want)) {
			t.Errorf("glog's INFO file has no line with %q: the log was not flushed before os.Exit?\n%s", want, file)
		}
	}
}

// buildPrograms builds the main packages pkgs into a temporary directory
// and returns it; with -short, the test is skipped instead.
func buildPrograms(t *testing.T, pkgs ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds programs")
	}
	dir := t.TempDir()
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}
