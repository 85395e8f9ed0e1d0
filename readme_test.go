package lameduck

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// block is one fenced block of a Markdown file.
type block struct {
	path string
	line int    // where its text begins
	lang string // the fence's info string: "go", "yaml", "" ...
	text string
}

// fencedBlocks returns every fenced block of the Markdown file at path.
func fencedBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []block
		cur  *block
		text strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case cur == nil && fence:
			cur = &block{path: path, line: n + 1, lang: strings.TrimSpace(strings.TrimSpace(line)[3:])}
			text.Reset()
		case cur != nil && fence:
			cur.text = text.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			text.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: a block is never closed", path, cur.line)
	}
	return out
}

// TestReadmeSnippets keeps the README's Go from rotting: a block that
// begins with a package clause is a complete program and must build
// against this repository; any other block must say, in a first-line
// comment starting "// Fragment", that it is a fragment.
func TestReadmeSnippets(t *testing.T) {
	var snippets []block
	for _, b := range fencedBlocks(t, "README.md") {
		if b.lang == "go" {
			snippets = append(snippets, b)
		}
	}
	if len(snippets) == 0 {
		t.Fatal("no Go blocks found in README.md")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	var programs []string
	for _, s := range snippets {
		switch {
		case strings.HasPrefix(s.text, "package "):
			dir := fmt.Sprintf("line%d", s.line)
			if err := os.MkdirAll(filepath.Join(mod, dir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(mod, dir, "main.go"), []byte(s.text), 0o644); err != nil {
				t.Fatal(err)
			}
			programs = append(programs, dir)
		case strings.HasPrefix(s.text, "// Fragment"):
		default:
			first, _, _ := strings.Cut(s.text, "\n")
			t.Errorf("README.md:%d: a Go block that is neither a complete program (package clause first) nor marked \"// Fragment\"; it begins %q", s.line, first)
		}
	}
	if len(programs) == 0 {
		t.Fatal("no complete program in README.md")
	}
	if testing.Short() {
		t.Skip("building the README's programs")
	}

	goMod := fmt.Sprintf("module readme.example\n\ngo 1.25\n\nrequire github.com/b583c413/lameduck v0.0.0\n\nreplace github.com/b583c413/lameduck => %s\n", root)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	// The programs need what lameduck needs, and nothing more: its go.sum
	// holds every checksum, so the build needs no network.
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	// Directory names are the README's line numbers, so errors point at
	// the block.
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the README's programs %v: go %s: %v\n%s", programs, strings.Join(args, " "), err, out)
		}
	}
}

// TestReadmeFragments keeps the README's excerpts of the examples true: a
// Go block whose first line is "// Fragment: from PATH" shows code of the
// file at PATH (from the repository's root), in one or more pieces
// separated by lines that begin "// ...". Each piece must appear in the
// file as consecutive lines, compared without their indentation.
func TestReadmeFragments(t *testing.T) {
	checked := 0
	for _, b := range fencedBlocks(t, "README.md") {
		first, body, _ := strings.Cut(b.text, "\n")
		path, ok := strings.CutPrefix(first, "// Fragment: from ")
		if b.lang != "go" || !ok {
			continue
		}
		src, err := os.ReadFile(filepath.FromSlash(strings.TrimSpace(path)))
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		file := trimmedLines(string(src))
		for _, piece := range fragmentPieces(body) {
			if !containsLines(file, piece) {
				t.Errorf("README.md:%d: these lines are not in %s as they are shown:\n%s", b.line, path, strings.Join(piece, "\n"))
			}
		}
		checked++
	}
	if checked == 0 {
		t.Error(`no "// Fragment: from" block in README.md`)
	}
}

// fragmentPieces splits a fragment's lines at the "// ..." lines, and drops
// blank lines at the ends of each piece.
func fragmentPieces(body string) [][]string {
	var pieces [][]string
	var cur []string
	flush := func() {
		for len(cur) > 0 && cur[len(cur)-1] == "" {
			cur = cur[:len(cur)-1]
		}
		for len(cur) > 0 && cur[0] == "" {
			cur = cur[1:]
		}
		if len(cur) > 0 {
			pieces = append(pieces, cur)
		}
		cur = nil
	}
	for _, l := range trimmedLines(body) {
		if strings.HasPrefix(l, "// ...") {
			flush()
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return pieces
}

func trimmedLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}

// containsLines reports whether want appears in lines as consecutive lines.
func containsLines(lines, want []string) bool {
	for i := 0; i+len(want) <= len(lines); i++ {
		if slices.Equal(lines[i:i+len(want)], want) {
			return true
		}
	}
	return false
}
