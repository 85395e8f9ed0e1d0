package lameduck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// apiBudget is the most exported package-level names the package may have:
// a reader should meet few concepts. Adding one means finding one to fold.
const apiBudget = 45

// TestAPIBudget counts the exported package-level names (functions, types,
// variables and constants; methods apart) and fails above apiBudget. Run
// with -v to see the list.
func TestAPIBudget(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{} // a name in files for different platforms counts once
	var names []string
	add := func(n *ast.Ident) {
		if n.IsExported() && !seen[n.Name] {
			seen[n.Name] = true
			names = append(names, n.Name)
		}
	}
	methods := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				switch {
				case d.Recv == nil:
					add(d.Name)
				case d.Name.IsExported():
					methods++
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						add(s.Name)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							add(n)
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	t.Logf("%d exported names, %d exported methods: %s", len(names), methods, strings.Join(names, " "))
	if len(names) > apiBudget {
		t.Errorf("got %d exported package-level names, want at most %d", len(names), apiBudget)
	}
}
