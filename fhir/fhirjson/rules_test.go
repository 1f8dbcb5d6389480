package fhirjson_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
)

// TestMappingRules pins FHIR R4's JSON rules one by one: XML in, the JSON expected, and back.
func TestMappingRules(t *testing.T) {
	for _, tc := range []struct{ name, xml, json string }{
		{"repeating elements are arrays, single ones are not",
			`<Patient><name><family value="Muster"/><given value="Erika"/></name><gender value="female"/></Patient>`,
			`{"resourceType":"Patient","name":[{"family":"Muster","given":["Erika"]}],"gender":"female"}`},
		{"decimals keep their lexical form, integers and booleans are unquoted",
			`<Observation><status value="final"/><code><text value="x"/></code><valueQuantity><value value="1.50"/></valueQuantity></Observation>`,
			`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}`},
		{"a primitive's id and extensions go to _name, aligned with null in arrays",
			`<Patient><name><given value="A"/><given id="g2"><extension url="http://x"><valueString value="B"/></extension></given></name><birthDate value="1970"><extension url="http://y"><valueBoolean value="true"/></extension></birthDate></Patient>`,
			`{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"id":"g2","extension":[{"url":"http://x","valueString":"B"}]}]}],"birthDate":"1970","_birthDate":{"extension":[{"url":"http://y","valueBoolean":true}]}}`},
		{"contained resources and the narrative div",
			`<MedicationRequest><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Hallo &amp; <b>so</b></p></div></text><contained><Medication><id value="m"/></Medication></contained><status value="active"/><intent value="order"/><medicationReference><reference value="#m"/></medicationReference><subject><reference value="Patient/p"/></subject><dosageInstruction><doseAndRate><doseQuantity><value value="2"/></doseQuantity></doseAndRate></dosageInstruction></MedicationRequest>`,
			`{"resourceType":"MedicationRequest","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hallo &amp; <b>so</b></p></div>"},"contained":[{"resourceType":"Medication","id":"m"}],"status":"active","intent":"order","medicationReference":{"reference":"#m"},"subject":{"reference":"Patient/p"},"dosageInstruction":[{"doseAndRate":[{"doseQuantity":{"value":2}}]}]}`},
		{"Bundle entries hold resources; total is a number",
			`<Bundle><type value="searchset"/><total value="1"/><entry><fullUrl value="x"/><resource><Patient><id value="p"/><active value="true"/></Patient></resource></entry></Bundle>`,
			`{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"fullUrl":"x","resource":{"resourceType":"Patient","id":"p","active":true}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := fhir.Parse([]byte(strings.Replace(tc.xml, ">", ` xmlns="http://hl7.org/fhir">`, 1)), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			js, err := fhirjson.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			if string(js) != tc.json {
				t.Fatalf("JSON\n got %s\nwant %s", js, tc.json)
			}
			back, err := fhirjson.Unmarshal(context.Background(), js, fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonical(t, back), canonical(t, res); got != want {
				t.Fatalf("back in XML\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestRefusals names what JSON red does not take, and where.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"not JSON", `{"resourceType":`, "the body ends before its JSON value does"},
		{"no resourceType", `{"id":"x"}`, "resourceType"},
		{"unknown resource type", `{"resourceType":"Pateint"}`, `"Pateint" is not a FHIR R4 resource type`},
		{"unknown element", `{"resourceType":"Patient","nickname":"x"}`, `Patient.nickname: "nickname" is not an element of Patient`},
		{"a decimal in quotes", `{"resourceType":"Observation","valueQuantity":{"value":"1,5"}}`, "Observation.valueQuantity.value: value is a decimal: a JSON number"},
		{"a boolean in quotes", `{"resourceType":"Patient","active":"true"}`, "Patient.active: active is a boolean"},
		{"a single element as an array", `{"resourceType":"Patient","gender":["female"]}`, "gender is a single value, not an array"},
		{"a repeating element not as an array", `{"resourceType":"Patient","name":{"family":"M"}}`, "name repeats: it is an array"},
		{"two types of one choice", `{"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"}`, "are types of one choice element"},
		{"values and _values of different lengths", `{"resourceType":"Patient","name":[{"given":["A","B"],"_given":[null]}]}`, "different lengths"},
		{"a div that is not XHTML", `{"resourceType":"Patient","text":{"status":"generated","div":"<div>x</div>"}}`, "not in the XHTML namespace"},
		{"a div with a DOCTYPE", `{"resourceType":"Patient","text":{"status":"generated","div":"<!DOCTYPE x><div xmlns=\"http://www.w3.org/1999/xhtml\"/>"}}`, "DOCTYPE"},
		{"two values", `{"resourceType":"Patient"} {}`, "more follows the resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fhirjson.Unmarshal(context.Background(), []byte(tc.json), fhir.DefaultLimits)
			if err == nil {
				t.Fatal("accepted")
			}
			is, status := fhir.Explain(err)
			if status != 400 || len(is) != 1 {
				t.Fatalf("status %d, issues %v", status, is)
			}
			if got := is[0].Expression + ": " + is[0].Diagnostics; !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want it to say %q", got, tc.want)
			}
		})
	}
	t.Run("limits hold", func(t *testing.T) {
		_, err := fhirjson.Unmarshal(context.Background(), []byte(`{"resourceType":"Patient","name":[{"given":["a","b","c"]}]}`), fhir.Limits{MaxElements: 3})
		if _, status := fhir.Explain(err); status != 413 {
			t.Fatalf("status %d: %v", status, err)
		}
	})
}
