package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
)

// prescription is gematik's End-to-End PZN prescription with the MedicationRequest id and a
// valid KVNR, changed by edit.
func prescription(t *testing.T, id string, edit func(b *etree.Element)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "fhir", "ident", "testdata", "gematik", "eRezept-Examples", "End-to-End-Examples",
		"7_01.10.2025", "PZN-Verordnung", "PZN-Verordnung_1", "PZN_Nr1_VerordnungArzt.xml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := fhir.Parse(raw, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	fhir.SetValue(b.FindElement("entry/resource/MedicationRequest/id"), id)
	for _, v := range b.FindElements("entry/resource/Patient/identifier/value") {
		fhir.SetValue(v, "M123456785")
	}
	if edit != nil {
		edit(b)
	}
	return fhir.Marshal(b)
}

// withoutPhysician leaves the Practitioner out of a prescription bundle, as a practice system
// that does not know yet who signs does (RED: the Practitioner is optional for $createerptask).
func withoutPhysician(b *etree.Element) {
	for _, e := range b.SelectElements("entry") {
		r := fhir.ResourceOf(e.SelectElement("resource"))
		switch r.Tag {
		case "Practitioner":
			b.RemoveChild(e)
		case "Composition":
			r.RemoveChild(r.SelectElement("author")) // the first author is the Practitioner
		case "MedicationRequest":
			r.RemoveChild(r.SelectElement("requester"))
		}
	}
}

// TestPrescriptionBundleValidated: the KBV bundle itself is validated against KBV_PR_ERP_Bundle
// (its entries' slices and the invariants across them), not only each entry; what red writes at
// signing (the PrescriptionId, a physician left out) is not required when queued.
func TestPrescriptionBundleValidated(t *testing.T) {
	srv, _ := tiServer(t)
	cases := []struct {
		name   string
		edit   func(b *etree.Element)
		status int
		want   string // in the answer
	}{
		{"without PrescriptionId: red writes it at signing", func(b *etree.Element) { b.RemoveChild(b.SelectElement("identifier")) }, 201, "MedicationRequest/"},
		{"without physician: red adds the signer", withoutPhysician, 201, "MedicationRequest/"},
		{"two MedicationRequests", func(b *etree.Element) {
			for _, e := range b.SelectElements("entry") {
				if fhir.ResourceOf(e.SelectElement("resource")).Tag == "MedicationRequest" {
					b.AddChild(e.Copy())
					break
				}
			}
		}, 400, "VerordnungArzneimittel"},
		{"without timestamp", func(b *etree.Element) { b.RemoveChild(b.SelectElement("timestamp")) }, 400, "Bundle.timestamp"},
		{"an entry without fullUrl", func(b *etree.Element) {
			e := b.SelectElements("entry")[2]
			e.RemoveChild(e.SelectElement("fullUrl"))
		}, 400, "Bundle.entry[2].fullUrl"},
		{"no profile named", func(b *etree.Element) { b.RemoveChild(b.SelectElement("meta")) }, 400, "Bundle.meta.profile"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", "application/fhir+xml", prescription(t, "mr-v"+string(rune('a'+i)), c.edit))
			if status != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%d, want %d with %q:\n%s", status, c.status, c.want, body)
			}
		})
	}
}

// TestPrescriptionSignedByStoredPhysician: a prescription queued without physician is signed by
// the stored Practitioner the batch names (practitioner=id) or else the one with the signing
// HBA's Telematik-ID; without either it stays queued with the reason. The bundle at the
// Fachdienst names the physician as author and requester.
func TestPrescriptionSignedByStoredPhysician(t *testing.T) {
	srv, _ := tiServer(t)
	// the HBA's Telematik-ID, as $telematikids tells it
	_, ids := srv.do(t, "GET", "/praxis/TI?action=$telematikids", "", nil)
	m := regexp.MustCompile(`<CardHandle>HBA-16</CardHandle>(?s:.*?)<TelematikId>([^<]+)</TelematikId>`).FindStringSubmatch(ids)
	if m == nil {
		t.Fatalf("no Telematik-ID of HBA-16 in\n%s", ids)
	}
	queue := func(id string) {
		t.Helper()
		if status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", "application/fhir+xml", prescription(t, id, withoutPhysician)); status != 201 {
			t.Fatalf("queue %s: %d\n%s", id, status, body)
		}
	}
	queue("mr-nobody")
	status, body := srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil)
	if status != 200 || !strings.Contains(body, "<reason>") || !strings.Contains(body, "Telematik-ID") || strings.Contains(body, "<url>") {
		t.Fatalf("no physician known: %d\n%s", status, body)
	}

	// the physician stored with the HBA's Telematik-ID (as any posted Practitioner)
	physician := practitionerOf(t, "dr-berger", m[1])
	if status, body := srv.do(t, "POST", "/praxis/Bundle", "application/fhir+xml", physician); status != 200 {
		t.Fatalf("posting the physician: %d\n%s", status, body)
	}
	status, body = srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil)
	if status != 200 || strings.Count(body, "<url>") != 1 || strings.Contains(body, "<reason>") {
		t.Fatalf("signed by the physician with the HBA's Telematik-ID: %d\n%s", status, body)
	}
	// the one named by practitioner=id: the example's physician, stored with another prescription
	if status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", "application/fhir+xml", prescription(t, "mr-with", nil)); status != 201 {
		t.Fatalf("queue with physician: %d\n%s", status, body)
	}
	queue("mr-named")
	status, body = srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16&practitioner=20597e0e-cb2a-45b3-95f0-dc3dbdb617c3", "", nil)
	if status != 200 || strings.Count(body, "<url>") != 2 || strings.Contains(body, "<reason>") {
		t.Fatalf("signed by the named physician: %d\n%s", status, body)
	}

	// the Fachdienst has the bundles with their physician as author and requester
	pharmacy := pharmacyAt(t, srv)
	want := map[string]string{"mr-nobody": "Practitioner/dr-berger", "mr-named": "Practitioner/20597e0e-cb2a-45b3-95f0-dc3dbdb617c3"}
	_, list := srv.do(t, "GET", "/praxis/Task", "", nil)
	for _, task := range regexp.MustCompile(`<id value="([0-9.]+)"/>\s*<identifier>(?s:.*?)GEM_ERP_NS_AccessCode"/>\s*<value value="([0-9a-f]+)"/>(?s:.*?)MedicationRequest/([a-z-]+)"`).FindAllStringSubmatch(list, -1) {
		ref, ok := want[task[3]]
		if !ok {
			continue
		}
		delete(want, task[3])
		signed, err := pharmacy.Accept(context.Background(), task[1], task[2])
		if err != nil {
			t.Fatalf("accepting %s: %v", task[3], err)
		}
		info, err := cms.Inspect(signed.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(info.Content), `<reference value="`+ref+`"`); n < 2 || !strings.Contains(string(info.Content), "<Practitioner") {
			t.Errorf("%s: the signed bundle names %s %d times:\n%s", task[3], ref, n, info.Content)
		}
	}
	if len(want) > 0 {
		t.Errorf("not in the Task list: %v\n%s", want, list)
	}
}

// pharmacyAt is a client of the running server's Fachdienst simulator acting as a pharmacy.
func pharmacyAt(t *testing.T, srv *server) *fachdienst.Client {
	t.Helper()
	m := regexp.MustCompile(`E-Rezept-Fachdienst simulator at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.output.String())
	if m == nil {
		t.Fatalf("no Fachdienst simulator announced:\n%s", srv.output)
	}
	return &fachdienst.Client{BaseURL: m[1], Identity: fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-SMC-B-Testkarte-883110000116873"}}
}

// TestTaskStatusFromFachdienst: a prescriber cannot read its Tasks at the Fachdienst; red learns
// that a pharmacy has one when the Fachdienst refuses the practice's $abort naming the Task's
// status, and the Task polling shows it from then on.
func TestTaskStatusFromFachdienst(t *testing.T) {
	srv, _ := tiServer(t)
	if status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", "application/fhir+xml", prescription(t, "mr-s", nil)); status != 201 {
		t.Fatalf("queue: %d\n%s", status, body)
	}
	if status, body := srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil); status != 200 || !strings.Contains(body, "<url>") {
		t.Fatalf("$processerp: %d\n%s", status, body)
	}
	_, list := srv.do(t, "GET", "/praxis/Task", "", nil)
	m := regexp.MustCompile(`<id value="([0-9.]+)"/>(?s:.*?)GEM_ERP_NS_AccessCode"/>\s*<value value="([0-9a-f]+)"/>`).FindStringSubmatch(list)
	if m == nil || !strings.Contains(list, `<status value="ready"/>`) {
		t.Fatalf("Task list:\n%s", list)
	}
	if _, err := pharmacyAt(t, srv).Accept(t.Context(), m[1], m[2]); err != nil {
		t.Fatal(err)
	}
	if status, body := srv.do(t, "GET", "/praxis/Task?action=$abort&prescriptionid="+m[1], "", nil); status != 409 || !strings.Contains(body, "in-progress") {
		t.Errorf("aborting a Task a pharmacy has: %d\n%s", status, body)
	}
	if _, list := srv.do(t, "GET", "/praxis/Task", "", nil); !strings.Contains(list, `<status value="in-progress"/>`) {
		t.Errorf("the polling after the refused abort:\n%s", list)
	}
}

// practitionerOf is a transaction storing a physician (KBV_PR_FOR_Practitioner) with the id and
// the Telematik-ID given.
func practitionerOf(t *testing.T, id, telematikID string) []byte {
	t.Helper()
	return []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/><entry><fullUrl value="http://pvs.local/fhir/Practitioner/` + id + `"/><resource>
<Practitioner><id value="` + id + `"/><meta><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_FOR_Practitioner|1.2"/></meta>
<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="LANR"/></coding></type><system value="https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR"/><value value="838382202"/></identifier>
<identifier><type><coding><system value="http://terminology.hl7.org/CodeSystem/v2-0203"/><code value="PRN"/></coding></type><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="` + telematikID + `"/></identifier>
<name><use value="official"/><family value="Berger"><extension url="http://hl7.org/fhir/StructureDefinition/humanname-own-name"><valueString value="Berger"/></extension></family><given value="Hanna"/><prefix value="Dr. med."><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"><valueCode value="AC"/></extension></prefix></name>
<qualification><code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Qualification_Type"/><code value="00"/></coding></code></qualification>
<qualification><code><coding><system value="https://fhir.kbv.de/CodeSystem/KBV_CS_FOR_Berufsbezeichnung"/><code value="Berufsbezeichnung"/></coding><text value="Hausärztin"/></code></qualification>
</Practitioner></resource><request><method value="PUT"/><url value="Practitioner/` + id + `"/></request></entry></Bundle>`)
}

// TestPrescriptionWorkflowRules: what the E-Rezept-Fachdienst would refuse at signing is refused
// when queued — a flow type that does not fit the coverage, a narcotic — and nothing is stored.
func TestPrescriptionWorkflowRules(t *testing.T) {
	srv, _ := tiServer(t)
	cases := []struct {
		name string
		edit func(b *etree.Element)
		want string
	}{
		{"private flow type for statutory insurance", func(b *etree.Element) {
			fhir.SetValue(b.FindElement("identifier/value"), "200.000.000.000.001.47")
		}, "Bundle.identifier.value"},
		{"a narcotic", func(b *etree.Element) {
			for _, x := range b.FindElements("entry/resource/Medication/extension") {
				if x.SelectAttrValue("url", "") == "https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Medication_Category" {
					fhir.SetValue(x.FindElement("valueCoding/code"), "01")
				}
			}
		}, "BtM"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "mr-rule-" + string(rune('a'+i))
			status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", "application/fhir+xml", prescription(t, id, c.edit))
			if status != 400 || !strings.Contains(body, c.want) {
				t.Errorf("%d, want 400 with %q:\n%s", status, c.want, body)
			}
		})
	}
	if _, body := srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil); strings.Contains(body, "<prescription>") {
		t.Errorf("a refused prescription was queued:\n%s", body)
	}
}
