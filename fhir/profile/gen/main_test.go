package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestTablesUpToDate regenerates the tables from the folders in $KBV_DEFS (space-separated; the
// definitions are not part of the repository) and compares them with the committed file.
func TestTablesUpToDate(t *testing.T) {
	defs := os.Getenv("KBV_DEFS")
	if defs == "" {
		t.Skip("KBV_DEFS not set")
	}
	g := newGen()
	for _, d := range strings.Fields(defs) {
		if err := g.readDir(d); err != nil {
			t.Fatal(err)
		}
	}
	src, err := emit(g.build())
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../tables_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, committed) {
		t.Error("fhir/profile/tables_gen.go is not what the generator makes of KBV_DEFS: run make profiles")
	}
}
