package lameduckgrpc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's gRPC section shows this module's recipe as fragments, which
// the library's own README test cannot build (the library does not import
// gRPC). This test builds them here, each inside the declarations it
// assumes, so that the recipe cannot drift from the API.

// readmeWrappers puts each fragment, found by a string it contains, into a
// file of its own.
var readmeWrappers = []struct{ marker, head, tail string }{{
	marker: "streams.FromGRPC(s, ln)",
	head: `package recipe

import (
	"context"
	"log"
	"net"
	"os"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/lameduckgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func recipe(ctx context.Context, ln net.Listener, registerServices func(*grpc.Server)) {
`,
	tail: "}\n",
}, {
	marker: "lameduck.Draining(ctx)",
	head: `package recipe

import (
	"github.com/b583c413/lameduck"
	"google.golang.org/grpc/status"

	"readme.example/pb"
)

type feed struct{ events chan *pb.Event }

`,
}}

// pbStub stands in for a generated package with a Feed service.
const pbStub = `package pb

import "google.golang.org/grpc"

type WatchRequest struct{}
type Event struct{}
type Feed_WatchServer = grpc.ServerStreamingServer[Event]
`

func TestReadmeRecipes(t *testing.T) {
	fragments := grpcFragments(t, filepath.Join("..", "README.md"))
	if testing.Short() {
		t.Skip("building the README's gRPC fragments")
	}
	dir := t.TempDir()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module readme.example\n\ngo 1.26.0\n\n"+
		"require (\n\tgithub.com/b583c413/lameduck v0.0.0\n\tgithub.com/b583c413/lameduck/lameduckgrpc v0.0.0\n\tgoogle.golang.org/grpc v1.85.0\n)\n\n"+
		"replace github.com/b583c413/lameduck => "+root+"\n\n"+
		"replace github.com/b583c413/lameduck/lameduckgrpc => "+here+"\n")
	sum, err := os.ReadFile("go.sum") // every checksum the build needs: no network
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	write("pb/pb.go", pbStub)
	for i, w := range readmeWrappers {
		var found []string
		for _, f := range fragments {
			if strings.Contains(f, w.marker) {
				found = append(found, f)
			}
		}
		if len(found) != 1 {
			t.Fatalf("README's gRPC section: %d fragments contain %q, want 1", len(found), w.marker)
		}
		write(filepath.Join("recipe", fmt.Sprintf("f%d.go", i)), w.head+found[0]+w.tail)
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's gRPC fragments do not build: %v\n%s", err, out)
	}
}

// grpcFragments returns the Go blocks of the "### gRPC" section of the
// Markdown file at path.
func grpcFragments(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []string
		in    bool // in the section
		block *strings.Builder
		sc    = bufio.NewScanner(f)
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.HasPrefix(line, "```"):
			out = append(out, block.String())
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "#"):
			in = line == "### gRPC"
		case in && line == "```go":
			block = new(strings.Builder)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Go block in a \"### gRPC\" section", path)
	}
	return out
}
