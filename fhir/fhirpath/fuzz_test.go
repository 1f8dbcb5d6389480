package fhirpath

import (
	"os"
	"testing"
)

// FuzzCompile: compiling never panics, and neither does evaluating what compiles.
func FuzzCompile(f *testing.F) {
	for _, l := range readExpressions(f) {
		f.Add(l.expr)
	}
	for _, s := range []string{`@2020-01-01T10:00:00.5+01:00`, `'\u00e4' & 'x'`, `-name.given[0]`, "`div`", `%'x'`, `1.5 + 'a'`, `@T`, `now() - 1`} {
		f.Add(s)
	}
	root := parseXML(f, patientXML)
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := Compile(expr)
		if err != nil {
			return
		}
		_, _ = e.Eval(root, WithClock(clock))
		_, _ = e.Eval(root.FindElement("address"), WithClock(clock))
	})
}

// BenchmarkInvariant evaluates a typical eRezept bundle invariant, which resolves the author.
func BenchmarkInvariant(b *testing.B) {
	data, err := os.ReadFile("testdata/erp-bundle.xml")
	if err != nil {
		b.Fatal(err)
	}
	root := parseXML(b, string(data))
	aws, err := os.ReadFile("testdata/aws-bundle.xml")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, use string }{
		{"resource-level", "KBV_PR_ERP_Prescription|1.3.3 -erp-angabeDosierungKennzeichenTrue"},
		{"bundle-allowed", "KBV_PR_AW_Bundle_Patientenakte|1.2.0 Allowed2"},
		{"bundle-resolve", "KBV_PR_ERP_Bundle|1.3.3 -erp-angabeIdentifikatorAusstellendePersonPflicht"},
	} {
		var expr string
		for _, l := range readExpressions(b) {
			for _, u := range l.uses {
				if len(u) > len(c.use) && u[:len(c.use)+1] == c.use+" " {
					expr = l.expr
				}
			}
		}
		e := MustCompile(expr)
		el := root
		switch c.name {
		case "resource-level":
			el = root.FindElement("entry[2]/resource/MedicationRequest/dosageInstruction")
		case "bundle-allowed":
			el = parseXML(b, string(aws))
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if ok, err := e.Bool(el); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			MustCompile(`entry.where(resource.meta.profile.startsWith('https://fhir.kbv.de/StructureDefinition/KBV_PR_AW').not()).count()=0`)
		}
	})
}
