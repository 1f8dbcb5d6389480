package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestAWSProfilesAreTheTables keeps the list of the KBV AWS resource profiles in step with the
// generated tables of fhir/profile (read from their source, which lists every profile).
func TestAWSProfilesAreTheTables(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "profile", "tables_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\{URL: "` + regexp.QuoteMeta(kbvSD) + `(KBV_PR_AW_[^"]+)", Version: "[^"]*", Name: "[^"]*", Kind: "resource", Type: "([A-Za-z]+)"`)
	tables := map[string][]string{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		tables[m[2]] = append(tables[m[2]], m[1])
	}
	if len(tables) == 0 {
		t.Fatal("no KBV AWS resource profiles found in the tables")
	}
	for typ, names := range tables {
		slices.Sort(names)
		got := slices.Sorted(slices.Values(awsProfiles[typ]))
		if !slices.Equal(got, names) {
			t.Errorf("%s: the list has %v, the tables hold %v", typ, got, names)
		}
	}
	for typ := range awsProfiles {
		if tables[typ] == nil {
			t.Errorf("%s: the list has profiles the tables do not hold", typ)
		}
	}
	// Every kind element names a path at which some profile of its type fixes a code.
	for typ := range kindPaths {
		n := 0
		for _, name := range awsProfiles[typ] {
			n += len(markers(name))
		}
		if n == 0 {
			t.Errorf("%s: no profile fixes a code at %s", typ, kindPaths[typ])
		}
	}
}
