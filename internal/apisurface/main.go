// Command apisurface counts the exported API of a Go package directory:
// types, functions, methods, constants and variables, and the settings of
// one configuration struct (its fields, and those of the package's own
// struct types nested in it, counted through). It reads the non-test .go
// files of the directory; it runs nothing.
//
//	go run ./internal/apisurface [-config Config] [dir]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"sort"
	"strings"
)

func main() {
	config := flag.String("config", "Config", "the configuration struct whose settings are counted")
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var names []string
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		report(pkgs[n], *config)
	}
}

func report(pkg *ast.Package, config string) {
	var types, funcs, methods, consts, vars int
	structs := map[string]*ast.StructType{}
	for _, f := range pkg.Files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					funcs++
				} else if recvExported(d.Recv) {
					methods++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if st, ok := s.Type.(*ast.StructType); ok {
							structs[s.Name.Name] = st
						}
						if s.Name.IsExported() {
							types++
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if !n.IsExported() {
								continue
							}
							if d.Tok == token.CONST {
								consts++
							} else {
								vars++
							}
						}
					}
				}
			}
		}
	}
	fmt.Printf("package %s: %d types, %d funcs, %d methods, %d consts, %d vars\n", pkg.Name, types, funcs, methods, consts, vars)
	if st, ok := structs[config]; ok {
		fields, settings := count(st, structs, map[string]bool{config: true})
		fmt.Printf("%s: %d fields, %d settings counting its nested structs\n", config, fields, settings)
	}
}

// count returns the exported fields of st and its settings: the fields,
// with a field of one of the package's own struct types counted as that
// struct's settings.
func count(st *ast.StructType, structs map[string]*ast.StructType, seen map[string]bool) (fields, settings int) {
	for _, f := range st.Fields.List {
		n := len(f.Names)
		exported := 0
		for _, name := range f.Names {
			if name.IsExported() {
				exported++
			}
		}
		if n == 0 { // embedded
			exported = 1
		}
		if exported == 0 {
			continue
		}
		fields += exported
		if id, ok := f.Type.(*ast.Ident); ok && structs[id.Name] != nil && !seen[id.Name] {
			seen[id.Name] = true
			_, s := count(structs[id.Name], structs, seen)
			delete(seen, id.Name)
			settings += exported * s
			continue
		}
		settings += exported
	}
	return fields, settings
}

func recvExported(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
