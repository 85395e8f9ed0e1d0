package lameduck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeSetup keeps the README's "Set-up" section true to the
// repository: the Go version it asks for is the newest any go.mod needs (and
// it names the modules that need more than the library), every mention of
// the test command, there and in the examples' READMEs, is the command
// .ci/test runs, and it names every Debian package that .ci/test may
// install.
func TestReadmeSetup(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, setup, ok := strings.Cut(string(readme), "\n## Set-up\n")
	if !ok {
		t.Fatal(`README.md has no "## Set-up" section`)
	}
	setup, _, _ = strings.Cut(setup, "\n## ")

	// The go line of every module, and the Debian packages the modules list.
	goLine := regexp.MustCompile(`(?m)^go (1\.(\d+))`)
	needs := map[string]int{} // module directory -> minor version
	var packages []string
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		switch d.Name() {
		case "go.mod":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m := goLine.FindStringSubmatch(string(data))
			if m == nil {
				t.Errorf("%s has no go line", path)
				return nil
			}
			needs[filepath.Dir(path)], _ = strconv.Atoi(m[2])
		case "apt-packages":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
					packages = append(packages, f[0])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	newest := 0
	for _, minor := range needs {
		newest = max(newest, minor)
	}
	m := regexp.MustCompile(`with Go 1\.(\d+)`).FindStringSubmatch(setup)
	if m == nil {
		t.Fatal(`Set-up does not say which Go it needs ("with Go 1.N")`)
	}
	if got, _ := strconv.Atoi(m[1]); got != newest {
		t.Errorf("Set-up asks for Go 1.%d; the newest go line among the modules is 1.%d", got, newest)
	}
	for dir, minor := range needs {
		if minor > needs["."] && !strings.Contains(setup, filepath.Base(dir)) {
			t.Errorf("%s needs Go 1.%d, more than the library's 1.%d, and Set-up does not name it", dir, minor, needs["."])
		}
	}

	script, err := os.ReadFile(filepath.Join(".ci", "test"))
	if err != nil {
		t.Fatal(err)
	}
	// The call itself, without the arguments the script passes on.
	run := regexp.MustCompile(`(go test -race [^"\n]*)"\$@" \./\.\.\.`).FindSubmatch(script)
	if run == nil {
		t.Fatal(".ci/test runs no go test -race")
	}
	want := strings.TrimSpace(string(run[1])) + " ./..."
	command := regexp.MustCompile("go test -race -count=1[^`\n]*?\\./\\.\\.\\.")
	if !command.MatchString(setup) {
		t.Errorf("Set-up never states the test command %q", want)
	}
	// The examples' READMEs say what .ci/test runs too.
	readmes, err := filepath.Glob("examples/*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append([]string{"README.md"}, readmes...) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range command.FindAllString(string(data), -1) {
			if got != want {
				t.Errorf("%s gives the test command as %q; .ci/test runs %q", path, got, want)
			}
		}
	}

	slices.Sort(packages)
	for _, p := range slices.Compact(packages) {
		if !strings.Contains(setup, "`"+p+"`") {
			t.Errorf("Set-up does not say that .ci/test may install %s", p)
		}
	}
}
