package main

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chwatch/chwatch/db/dbtest"
)

// owners is the one place that says which package owns each table: only
// the owner writes it. A new table gets its owner here, in the same commit,
// and the owner's package doc comment names it (TestTableOwners fails
// otherwise).
var owners = map[string]string{
	"companies":         "company",
	"company_changes":   "company",
	"officers":          "company",
	"status_changes":    "company",
	"filing_unknowns":   "company",
	"pscs":              "company",
	"jobs":              "queue",
	"stream_gaps":       "gaps",
	"stream_events":     "ingest",
	"event_payloads":    "ingest",
	"stream_rejects":    "ingest",
	"stream_cursor":     "ingest",
	"imports":           "importer",
	"api_budget":        "budget",
	"feed_outbox":       "feed",
	"feed_sinks":        "feed",
	"service_state":     "db",
	"counters":          "db",
	"schema_migrations": "db",
}

// private tables are neither written nor read outside their owner: others
// call the owner's functions (reading companies or status_changes for an
// export or status is fine).
var private = []string{"jobs", "stream_gaps"}

// Every table of the schema has an owner, and the owner's doc comment says
// so.
func TestTableOwners(t *testing.T) {
	d := dbtest.Open(t)
	rows, err := d.R.QueryContext(context.Background(), "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("only %d tables in the schema: %v", len(tables), tables)
	}
	docs := map[string]string{}
	for _, table := range tables {
		pkg, ok := owners[table]
		if !ok {
			t.Errorf("table %s has no owner: add it to owners in ownership_test.go and name it in its package's doc comment", table)
			continue
		}
		if _, err := os.Stat(pkg); err != nil {
			t.Errorf("table %s belongs to package %s, which does not exist", table, pkg)
			continue
		}
		if _, ok := docs[pkg]; !ok {
			docs[pkg] = packageDoc(t, pkg)
		}
		if !regexp.MustCompile(`\b` + table + `\b`).MatchString(docs[pkg]) {
			t.Errorf("package %s owns table %s but its doc comment does not say so", pkg, table)
		}
	}
}

// packageDoc returns the doc comment of the package in directory dir.
func packageDoc(tb testing.TB, dir string) string {
	tb.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		tb.Fatalf("read package %s: %v", dir, err)
	}
	var doc strings.Builder
	for _, p := range pkgs {
		for _, f := range p.Files {
			if f.Doc != nil {
				doc.WriteString(f.Doc.Text())
			}
		}
	}
	return doc.String()
}

// TestSQLOwnership reads every string of SQL in the non-test Go source and
// fails when a package writes a table it does not own, or touches jobs or
// stream_gaps outside their owners. Migrations and schema.sql are SQL files,
// not Go, and tests may set up any row they like.
func TestSQLOwnership(t *testing.T) {
	var files int
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if name := e.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "dist" || name == "demo") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, v := range violations(t, path, filepath.ToSlash(filepath.Dir(path)), src) {
			t.Error(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d Go files read: is the test running at the top of the repository?", files)
	}
}

// The checker finds what it is meant to: each case is a package writing or
// touching what it must not.
func TestSQLOwnershipCatches(t *testing.T) {
	tests := []struct {
		name, pkg, src string
		want           string // "" when the source is fine
	}{
		{"OwnerWrites", "company", "UPDATE companies SET x = 1", ""},
		{"OtherWrites", "importer", "UPDATE companies SET missing_from_bulk = ?", "importer writes companies"},
		{"Insert", "app", "INSERT INTO stream_cursor (stream) VALUES (?)", "app writes stream_cursor"},
		{"InsertOr", "app", "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", "app writes counters"},
		{"Replace", "app", "REPLACE INTO imports (id) VALUES (1)", "app writes imports"},
		{"Delete", "housekeep", "DELETE FROM event_payloads WHERE rowid IN (SELECT 1)", "housekeep writes event_payloads"},
		{"Concatenated", "ingest", `"INSERT INTO " + "jobs (kind) VALUES (?)"`, "ingest writes jobs"},
		{"DynamicTable", "ingest", `"INSERT INTO " + table + " VALUES (?)"`, "a table named at run time"},
		{"ReadPrivate", "status", "SELECT count(*) FROM jobs WHERE state = 'dead'", "status touches jobs"},
		{"JoinPrivate", "export", "SELECT 1 FROM companies c JOIN stream_gaps g ON 1", "export touches stream_gaps"},
		{"ReadCompanies", "export", "SELECT company_number FROM companies c JOIN status_changes s USING (company_number)", ""},
		{"ReadView", "queue", "INSERT INTO jobs (kind) SELECT 'sweep_check' FROM strike_off_companies WHERE true", ""},
		{"Upsert", "db", "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + 1", ""},
		{"Prose", "status", "dead jobs: see chwatch queue status, then update jobs by hand", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lit := tt.src
			if !strings.HasPrefix(lit, `"`) {
				lit = strconv.Quote(lit)
			}
			src := "package x\n\nvar q = " + lit + "\n"
			got := strings.Join(violations(t, tt.pkg+"/x.go", tt.pkg, []byte(src)), "; ")
			switch {
			case tt.want == "" && got != "":
				t.Errorf("reported %q", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("reported %q, want %q", got, tt.want)
			}
		})
	}
}

var (
	// SQL keywords are written in capitals in chwatch, which keeps prose
	// ("update the companies") out of the net.
	writeSQL = regexp.MustCompile(`\b(?:INSERT(?:\s+OR\s+[A-Z]+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+[A-Z]+)?|DELETE\s+FROM)\s+"?(\w+|\x00)`)
	touchSQL = regexp.MustCompile(`\b(?:FROM|JOIN|INTO|UPDATE|TABLE|INDEXED BY)\s+"?(\w+)`)
)

// violations lists the ownership rules broken by the SQL in src, a file of
// package pkg (its directory).
func violations(tb testing.TB, path, pkg string, src []byte) []string {
	tb.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		tb.Fatalf("parse %s: %v", path, err)
	}
	var out []string
	check := func(pos token.Pos, sql string) {
		where := fset.Position(pos).String()
		reported := map[string]bool{}
		for _, m := range writeSQL.FindAllStringSubmatch(sql, -1) {
			table := m[1]
			if table == "\x00" {
				out = append(out, where+": a write to a table named at run time: spell the table out in the SQL, so ownership can be read")
				continue
			}
			if owner, ok := owners[table]; ok && owner != pkg && !reported[table] {
				reported[table] = true
				out = append(out, where+": "+pkg+" writes "+table+", which "+owner+" owns: call a function of "+owner)
			}
		}
		for _, m := range touchSQL.FindAllStringSubmatch(sql, -1) {
			table := m[1]
			if slices.Contains(private, table) && owners[table] != pkg && !reported[table] {
				reported[table] = true
				out = append(out, where+": "+pkg+" touches "+table+", which only "+owners[table]+" reads or writes")
			}
		}
	}
	// A concatenation is checked whole, with whatever is not a literal
	// standing as \x00; its parts are not checked again on their own.
	inside := map[ast.Expr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.BinaryExpr:
			if inside[e] || e.Op != token.ADD {
				return true
			}
			var b strings.Builder
			lits := 0
			var walk func(x ast.Expr)
			walk = func(x ast.Expr) {
				inside[x] = true
				switch x := x.(type) {
				case *ast.BinaryExpr:
					if x.Op == token.ADD {
						walk(x.X)
						walk(x.Y)
						return
					}
				case *ast.ParenExpr:
					walk(x.X)
					return
				case *ast.BasicLit:
					if x.Kind == token.STRING {
						s, err := strconv.Unquote(x.Value)
						if err == nil {
							b.WriteString(s)
							lits++
							return
						}
					}
				}
				b.WriteString("\x00")
			}
			walk(e)
			if lits > 0 {
				check(e.Pos(), b.String())
			}
		case *ast.BasicLit:
			if e.Kind == token.STRING && !inside[e] {
				if s, err := strconv.Unquote(e.Value); err == nil {
					check(e.Pos(), s)
				}
			}
		}
		return true
	})
	return out
}

// Strike-off is defined once in SQL, by the strike_off_companies view (its
// Go twin, company.InStrikeOff, is tested against it in company): no query
// spells the condition out again.
func TestStrikeOffDefinedOnce(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if name := e.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "'active-proposal-to-strike-off'") {
				t.Errorf("%s:%d: strike-off spelt out in SQL: read the strike_off_companies view (or company.InStrikeOff in Go)", path, i+1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
