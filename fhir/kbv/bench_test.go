package kbv_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/fhir/profile"
	"github.com/redclone/red/internal/fixture"
)

// benchResources are the resources of testdata/bundles/patientenakte.xml (every stored type) with
// their locations, as records checks them.
func benchResources(b *testing.B) ([]*etree.Element, []string) {
	b.Helper()
	bundle, err := fhir.Parse(fixture.Read(b, filepath.Join("..", "..", "testdata", "bundles", "patientenakte.xml")), fhir.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	var res []*etree.Element
	var at []string
	for i, e := range bundle.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil {
			res = append(res, r)
			at = append(at, fmt.Sprintf("Bundle.entry[%d].resource", i))
		}
	}
	return res, at
}

// BenchmarkPatientenakte validates the resources of patientenakte.xml: the hand-written rules
// alone as they run without profile (kbv.Check), what red runs (validate.Resource: the profile,
// then the rules) and its two parts, for all of them (ns/resource), and validate.Resource of each
// resource (each/Type/id).
func BenchmarkPatientenakte(b *testing.B) {
	res, at := benchResources(b)
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	opts := kbv.Options{Now: now}
	all := func(check func(*etree.Element, string)) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, r := range res {
					check(r, at[i])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(res)), "ns/resource")
		}
	}
	b.Run("kbv.Check", all(func(r *etree.Element, at string) { kbv.Check(r, at, now) }))
	b.Run("validate.Resource", all(func(r *etree.Element, at string) { validate.Resource(r, at, opts) }))
	// The share of each part of validate.Resource: the profile with its invariants, and the rules
	// left to fhir/kbv for a resource the profile tables checked.
	popts := validate.ProfileOptions(now)
	b.Run("profile.Validate", all(func(r *etree.Element, at string) { profile.Validate(r, at, popts) }))
	b.Run("kbv.CheckWith-profiled", all(func(r *etree.Element, at string) {
		kbv.CheckWith(r, at, kbv.Options{Now: now, Profiled: true})
	}))
	for i, r := range res {
		b.Run("each/"+r.Tag+"/"+fhir.ChildValue(r, "id"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				validate.Resource(r, at[i], opts)
			}
		})
	}
}
