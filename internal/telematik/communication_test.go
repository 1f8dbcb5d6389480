package telematik_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/telematik"
)

// A reply is checked before any TI call: a Service without Konnektor and Fachdienst reports
// every problem of the request, each at its place, and never quotes the message.
func TestReplyIsCheckedFirst(t *testing.T) {
	const (
		rx   = "160.000.000.000.001.54"
		kvnr = "M123456785"
		text = "Ihr Medikament ist da"
	)
	reply := func(inner string) string {
		return `<Communication xmlns="http://hl7.org/fhir">` + inner + `</Communication>`
	}
	good := map[string]string{
		"profile":   `<meta><profile value="https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Communication_Reply|1.4"/></meta>`,
		"basedOn":   `<basedOn><reference value="Task/` + rx + `"/></basedOn>`,
		"status":    `<status value="unknown"/>`,
		"recipient": `<recipient><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="` + kvnr + `"/></identifier></recipient>`,
		"payload":   `<payload><contentString value="{&quot;version&quot;:1,&quot;supplyOptionsType&quot;:&quot;onPremise&quot;,&quot;info_text&quot;:&quot;` + text + `&quot;}"/></payload>`,
	}
	with := func(replace map[string]string) string {
		var b strings.Builder
		for _, k := range []string{"profile", "basedOn", "status", "recipient", "payload"} {
			v, ok := replace[k]
			if !ok {
				v = good[k]
			}
			b.WriteString(v)
		}
		return reply(b.String())
	}
	params := func(ps ...string) string {
		var b strings.Builder
		b.WriteString(`<Parameters xmlns="http://hl7.org/fhir">`)
		for i := 0; i+1 < len(ps); i += 2 {
			b.WriteString(`<parameter><name value="` + ps[i] + `"/><valueString value="` + ps[i+1] + `"/></parameter>`)
		}
		return b.String() + `</Parameters>`
	}
	query := url.Values{"prescriptionid": {rx}, "kvnr": {kvnr}}
	for _, c := range []struct {
		name  string
		query url.Values
		body  string
		want  []string // expressions of the issues, in order
	}{
		{"refuses another profile", nil, with(map[string]string{"profile": `<meta><profile value="https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Communication_DispReq|1.4"/></meta>`}),
			[]string{"Communication.meta.profile"}},
		{"refuses a status other than unknown", nil, with(map[string]string{"status": `<status value="completed"/>`}), []string{"Communication.status"}},
		{"refuses a reference with the AccessCode", nil, with(map[string]string{"basedOn": `<basedOn><reference value="Task/` + rx + `/$accept?ac=00"/></basedOn>`}),
			[]string{"Communication.basedOn.reference"}},
		{"refuses a wrong PrescriptionId", nil, with(map[string]string{"basedOn": `<basedOn><reference value="Task/160.000.000.000.001.55"/></basedOn>`}),
			[]string{"Communication.basedOn.reference"}},
		{"refuses two recipients", nil, with(map[string]string{"recipient": good["recipient"] + good["recipient"]}), []string{"Communication.recipient"}},
		{"refuses a pharmacy as recipient", nil, with(map[string]string{"recipient": `<recipient><identifier><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="3-abc"/></identifier></recipient>`}),
			[]string{"Communication.recipient.identifier.system", "Communication.recipient.identifier.value"}},
		{"refuses a reply without payload", nil, with(map[string]string{"payload": ""}), []string{"Communication.payload"}},
		{"refuses plain text as payload", nil, with(map[string]string{"payload": `<payload><contentString value="` + text + `"/></payload>`}),
			[]string{"Communication.payload.contentString"}},
		{"reports everything at once", nil, reply(""), []string{"Communication.meta.profile", "Communication.status", "Communication.basedOn", "Communication.recipient", "Communication.payload"}},
		{"refuses the short form without query", url.Values{}, params("text", text), []string{"prescriptionid", "kvnr"}},
		{"refuses a short form that says nothing", query, params("supplyOptionsType", "shipment"), []string{"Parameters.parameter"}},
		{"refuses an unknown parameter", query, params("text", text, "colour", "blue"), []string{"Parameters.parameter[1].name"}},
		{"refuses a parameter given twice", query, params("text", text, "text", text), []string{"Parameters.parameter[1]"}},
		{"refuses an unknown supply option", query, params("text", text, "supplyOptionsType", "drone"), []string{"Parameters.parameter.where(name='supplyOptionsType').value"}},
		{"refuses a pick-up code for shipment", query, params("pickUpCodeHR", "1234", "supplyOptionsType", "shipment"), []string{"Parameters.parameter.where(name='pickUpCodeHR').value"}},
		{"refuses other resources", nil, `<Bundle xmlns="http://hl7.org/fhir"/>`, []string{"Bundle"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, err := fhir.Parse([]byte(c.body), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			pharmacist := access.Principal{Tenant: "praxis", User: "anna", Roles: []access.Role{access.Pharmacist}}
			_, err = (&telematik.Service{}).Reply(access.With(context.Background(), pharmacist), c.query, body)
			issues, status := fhir.Explain(err)
			if status != 400 {
				t.Fatalf("status %d: %v", status, err)
			}
			var got []string
			for _, is := range issues {
				got = append(got, is.Expression)
				if strings.Contains(is.Diagnostics, text) || strings.Contains(is.Diagnostics, kvnr) || strings.Contains(is.Diagnostics, rx) {
					t.Errorf("the message quotes the request: %s", is.Diagnostics)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("issues at %q, want %q\n%v", got, c.want, issues)
			}
		})
	}
}
