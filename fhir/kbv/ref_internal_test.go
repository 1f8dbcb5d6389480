package kbv

import "testing"

func TestRefType(t *testing.T) {
	for _, tc := range []struct {
		ref string
		typ string
		ok  bool
	}{
		{"Patient/P1001", "Patient", true},
		{"Patient/P1001/_history/2", "Patient", true},
		{"Practitioner/a$b_c-d.e", "Practitioner", true},
		{"http://praxis.example/fhir/Patient/1", "Patient", true},
		{"https://praxis.example/fhir/Patient/1/_history/1", "Patient", true},
		{"http:////Patient/1", "Patient", true},
		{"urn:uuid:0b5a4ef6-8b6d-4b8e-9a48-6a2b7e1f8c11", "", true},
		{"urn:oid:1.2.276.0.76.4.8", "", true},
		{"#med1", "", true},
		{"patient/1", "", false},
		{"P/1", "", false},
		{"Patient/", "", false},
		{"Patient/1/2", "", false},
		{"Patient/1/_history/", "", false},
		{"Patient/a b", "", false},
		{"Patient/1/_history/2/x", "", false},
		{"http:///Patient/1", "", false},
		{"http://host name/Patient/1", "", false},
		{"ftp://host/Patient/1", "", false},
		{"http://host/Patient/_history/1", "", false},
		{"urn:uuid:not-a-uuid", "", false},
		{"#", "", false},
		{"", "", false},
	} {
		typ, ok := refType(tc.ref)
		if typ != tc.typ || ok != tc.ok {
			t.Errorf("refType(%q) = %q, %v; want %q, %v", tc.ref, typ, ok, tc.typ, tc.ok)
		}
	}
}

func TestIsInteger(t *testing.T) {
	for v, want := range map[string]bool{"0": true, "7": true, "-12": true, "120": true, "": false, "-": false, "01": false, "-0": true, "1.0": false, "1e3": false, "+1": false} {
		if got := isInteger(v); got != want {
			t.Errorf("isInteger(%q) = %v, want %v", v, got, want)
		}
	}
}
