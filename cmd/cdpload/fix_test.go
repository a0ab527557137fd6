package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"cdpload/fix"
)

var flagName = regexp.MustCompile(`--([a-z][a-z-]*)`)

// Every fix has words, and every flag its words name is one the command has: the words
// are the command's, in one place.
func TestFixWords(t *testing.T) {
	fs := newFlagSet("load", &options{}, io.Discard)
	consts := fixConsts(t)
	if got := len(fix.All()); got != len(consts)-1 { // fix.None has none
		t.Errorf("%d fixes have words; fix/fix.go declares %d besides None", got, len(consts)-1)
	}
	for _, f := range fix.All() {
		words := f.Say("x")
		if words == "" {
			t.Errorf("fix %d has no words", f)
		}
		for _, m := range flagName.FindAllStringSubmatch(words, -1) {
			if fs.Lookup(m[1]) == nil {
				t.Errorf("fix %q names --%s, which cdpload load does not have", words, m[1])
			}
		}
	}
}

// fixConsts returns the names of the Fix constants fix/fix.go declares.
func fixConsts(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "fix", "fix.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// The library packages name no flag of the command in their strings: they say which fix
// applies (package fix), and the fix says it in the command's words.
func TestLibrariesNameNoFlag(t *testing.T) {
	for _, dir := range []string{"checkpoint", "digest", "loader", "remote", "sink", "source"} {
		root := filepath.Join("..", "..", dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err == nil && flagName.MatchString(s) {
					t.Errorf("%s: %q names a flag: say it with package fix", fset.Position(lit.Pos()), s)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
