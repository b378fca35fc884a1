package bulk

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

// TestMappingTablesGolden keeps every mapping table in a golden file, so a
// change to any mapping shows up in review as a diff of
// testdata/mappings.golden.json. Rewrite it with -update.
func TestMappingTablesGolden(t *testing.T) {
	type row struct {
		Text         string
		Status       string `json:",omitempty"`
		Detail       string `json:",omitempty"`
		APIType      string `json:",omitempty"`
		Jurisdiction string `json:",omitempty"`
	}
	tables := map[string][]row{}
	for _, s := range statusTable {
		st, d, known := MapStatus(s.text)
		if !known || st != s.status || d != s.detail {
			t.Errorf("MapStatus(%q) = %q, %q, %v; want the table's %q, %q", s.text, st, d, known, s.status, s.detail)
		}
		tables["status"] = append(tables["status"], row{Text: s.text, Status: s.status, Detail: s.detail})
	}
	for _, c := range categoryTable {
		if got, known := MapCategory(c.text); !known || got != c.apiType {
			t.Errorf("MapCategory(%q) = %q, %v; want the table's %q", c.text, got, known, c.apiType)
		}
		tables["category"] = append(tables["category"], row{Text: c.text, APIType: c.apiType})
	}
	for _, c := range countryTable {
		tables["country_of_origin"] = append(tables["country_of_origin"], row{Text: c.text, Jurisdiction: c.jurisdiction})
	}
	js, err := json.MarshalIndent(tables, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	golden := "testdata/mappings.golden.json"
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(golden, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, want) {
		t.Errorf("mapping tables differ from %s (rewrite with -update):\n%s", golden, js)
	}
}
