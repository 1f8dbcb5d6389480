package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
)

const fhirJSON = "application/fhir+json"

// asJSON is an XML document in FHIR JSON.
func asJSON(t testing.TB, xml []byte) []byte {
	t.Helper()
	res, err := fhir.Parse(xml, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	js, err := fhirjson.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// object decodes a JSON answer.
func object(t testing.TB, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	return m
}

// TestJSONOnTheWire posts a Patientenakte in FHIR JSON and reads, searches and fails in JSON,
// with RED's XML untouched by default, and tries the strict-FHIR mode per request.
func TestJSONOnTheWire(t *testing.T) {
	in := newInstance(t, "")
	in.initTenant("praxis", "anna", "pw")
	srv := in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))

	status, body := srv.do(t, "POST", "/praxis/Bundle", fhirJSON, asJSON(t, patientsBundle(t)))
	if status != http.StatusOK {
		t.Fatalf("POST in JSON: %d %s", status, body)
	}
	if m := object(t, body); m["resourceType"] != "Bundle" || m["type"] != "transaction-response" {
		t.Fatalf("POST answer: %s", body)
	}

	t.Run("read answers JSON for Accept and XML by default", func(t *testing.T) {
		_, xmlBody := srv.do(t, "GET", "/praxis/Patient/60151", "", nil)
		status, body := srv.do(t, "GET", "/praxis/Patient/60151", "", nil, "Accept", "application/fhir+json")
		if status != http.StatusOK || object(t, body)["resourceType"] != "Patient" {
			t.Fatalf("%d %s", status, body)
		}
		mustContain(t, "XML read", xmlBody, `<Patient xmlns="http://hl7.org/fhir">`)
		back, err := fhirjson.Unmarshal(t.Context(), []byte(body), fhir.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(fhir.Document(back)); got != xmlBody {
			t.Fatalf("JSON read differs from the XML read:\n%s\n%s", got, xmlBody)
		}
	})
	t.Run("search in JSON has Bundle.link; RED's XML keeps its links", func(t *testing.T) {
		status, body := srv.do(t, "GET", "/praxis/Patient?_format=json", "", nil, "Accept", "application/fhir+xml")
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		mustContain(t, "JSON search", body, `"link":[{"relation":"self","url":"/praxis/Patient?page=1"}`, `"fullUrl":"/Patient/60151"`)
		_, xmlBody := srv.do(t, "GET", "/praxis/Patient", "", nil)
		mustContain(t, "XML search", xmlBody, "<self>")
	})
	t.Run("strict search has absolute links and fullUrls", func(t *testing.T) {
		status, body := srv.do(t, "GET", "/praxis/Patient", "", nil, "Prefer", "handling=strict")
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		mustContain(t, "strict search", body, `<link>`, `<url value="`+srv.base+`/praxis/Patient?page=1"/>`, `<fullUrl value="`+srv.base+`/praxis/Patient/60151"/>`)
		if strings.Contains(body, "<self>") {
			t.Fatalf("strict search keeps RED's links:\n%s", body)
		}
	})
	t.Run("errors are JSON OperationOutcomes", func(t *testing.T) {
		status, body := srv.do(t, "GET", "/praxis/Patient/nobody", "", nil, "Accept", "application/fhir+json")
		if m := object(t, body); status != http.StatusNotFound || m["resourceType"] != "OperationOutcome" {
			t.Fatalf("%d %s", status, body)
		}
		status, body = srv.do(t, "POST", "/praxis/Bundle", fhirJSON, []byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Patient","nickname":"x"}}]}`))
		if m := object(t, body); status != http.StatusBadRequest || m["resourceType"] != "OperationOutcome" {
			t.Fatalf("%d %s", status, body)
		}
		mustContain(t, "unknown member", body, `Bundle.entry[0].resource.nickname`)
	})
	t.Run("an Accept red cannot write is 406 naming what it writes", func(t *testing.T) {
		status, body := srv.do(t, "GET", "/praxis/Patient/60151", "", nil, "Accept", "text/html")
		if status != http.StatusNotAcceptable {
			t.Fatalf("%d %s", status, body)
		}
		mustContain(t, "406", body, "<OperationOutcome", "application/fhir+json", "application/fhir+xml")
		status, body = srv.do(t, "GET", "/praxis/Patient/60151?_format=yaml", "", nil)
		if status != http.StatusNotAcceptable {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("strict upload of a Patientenakte is 201 Created with Location", func(t *testing.T) {
		req, _ := http.NewRequest("POST", srv.base+"/praxis/Bundle", strings.NewReader(string(asJSON(t, patientsBundle(t)))))
		req.Header.Set("Content-Type", fhirJSON)
		req.Header.Set("Prefer", "handling=strict")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != srv.base+"/praxis/Bundle/10000" {
			t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("the CapabilityStatement lists both formats", func(t *testing.T) {
		_, body := srv.do(t, "GET", "/metadata?_format=json", "", nil)
		mustContain(t, "metadata", body, `"format":["application/fhir+xml","application/fhir+json"]`)
	})
}
