package cli_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/ti/fachdienst"
)

const (
	pharmacyTelematikID = "3-SMC-B-Testkarte-883110000177003" // SMC-B-17 in the simulated terminal
	holderKVNR          = "M123456785"                        // the eGK's holder, the prescriptions' patient
	representativeKVNR  = "R112233448"                        // someone the patient gave the AccessCode
	replyText           = "Ihr Ramipril liegt ab 15 Uhr zur Abholung bereit."
)

// fachdienstOf is the Fachdienst simulator's URL red announced.
func fachdienstOf(t testing.TB, srv *server) string {
	t.Helper()
	m := regexp.MustCompile(`E-Rezept-Fachdienst simulator at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.output.String())
	if m == nil {
		t.Fatalf("no Fachdienst simulator announced:\n%s", srv.output)
	}
	return m[1]
}

// readyPrescription signs and sends one prescription with $createerp and returns its
// PrescriptionId and AccessCode.
func readyPrescription(t testing.TB, srv *server, id string) (taskID, accessCode string) {
	t.Helper()
	status, body := srv.do(t, "POST", "/praxis/Bundle?action=$createerp&cardname=Dr.%20med.%20Hanna%20Berger%20TEST-ONLY&smbiccsn=80276883110000177002",
		fhirXML, prescriptionBundle(t, id))
	task := regexp.MustCompile(`<taskid>([0-9.]+)</taskid>`).FindStringSubmatch(body)
	ac := regexp.MustCompile(`<accesscode>([0-9a-f]{64})</accesscode>`).FindStringSubmatch(body)
	if status != 200 || task == nil || ac == nil {
		t.Fatalf("$createerp: %d\n%s", status, body)
	}
	return task[1], ac[1]
}

// assign is an insured person's DispReq: the prescription goes to the pharmacy.
func assign(t testing.TB, fd, kvnr, taskID, accessCode, hint string) fachdienst.Communication {
	t.Helper()
	payload := fmt.Sprintf(`{"version":1,"supplyOptionsType":"onPremise","name":"Lena Sommer","hint":%q}`, hint)
	body := `<Communication xmlns="http://hl7.org/fhir">
  <meta><profile value="https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Communication_DispReq|1.5"/></meta>
  <extension url="` + fachdienst.ExtPrescriptionType + `"><valueCoding><system value="` + fachdienst.SystemFlowType + `"/><code value="160"/></valueCoding></extension>
  <basedOn><reference value="Task/` + taskID + `/$accept?ac=` + accessCode + `"/></basedOn>
  <status value="unknown"/>
  <recipient><identifier><system value="` + fachdienst.SystemTelematikID + `"/><value value="` + pharmacyTelematikID + `"/></identifier></recipient>
  <payload><contentString value="` + strings.ReplaceAll(payload, `"`, "&quot;") + `"/></payload>
</Communication>`
	c := &fachdienst.Client{BaseURL: fd, Identity: fachdienst.Identity{ProfessionOID: fachdienst.OIDVersicherter, ID: kvnr}}
	sent, err := c.SendCommunication(t.Context(), []byte(body))
	if err != nil {
		t.Fatalf("DispReq: %v", err)
	}
	return sent
}

// replyParams is the short form of $reply.
func replyParams(params ...[2]string) []byte {
	var b strings.Builder
	b.WriteString(`<Parameters xmlns="http://hl7.org/fhir">`)
	for _, p := range params {
		fmt.Fprintf(&b, `<parameter><name value="%s"/><valueString value="%s"/></parameter>`, p[0], p[1])
	}
	b.WriteString(`</Parameters>`)
	return []byte(b.String())
}

func totalOf(body string) string {
	m := regexp.MustCompile(`<total value="(\d+)"/>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPharmacyMessages: the patient and a representative assign prescriptions to the pharmacy;
// $received hands both out newest first and marks them read; the pharmacy replies in both forms
// and the reply arrives at the Fachdienst as gematik's Reply; nothing of the messages reaches
// red's database or log.
func TestPharmacyMessages(t *testing.T) {
	srv, _, in := tiInstance(t)
	fd := fachdienstOf(t, srv)
	task1, ac1 := readyPrescription(t, srv, "mr-msg-1")
	task2, ac2 := readyPrescription(t, srv, "mr-msg-2")
	first := assign(t, fd, holderKVNR, task1, ac1, "Bitte im Morsecode klingeln")
	time.Sleep(5 * time.Millisecond) // the Fachdienst's clock counts milliseconds
	second := assign(t, fd, representativeKVNR, task2, ac2, "Abholung durch die Nachbarin")

	status, body := srv.do(t, "GET", "/praxis/Communication?action=$received", "", nil)
	if status != 200 || totalOf(body) != "2" {
		t.Fatalf("$received: %d\n%s", status, body)
	}
	mustContain(t, "$received", body, `<type value="searchset"/>`, "GEM_ERP_PR_Communication_DispReq", "<received value=", "Morsecode", representativeKVNR)
	if i, j := strings.Index(body, second.ID), strings.Index(body, first.ID); i < 0 || j < 0 || i > j {
		t.Errorf("not newest first (%s sent after %s):\n%s", second.ID, first.ID, body)
	}
	if status, body := srv.do(t, "GET", "/praxis/Communication?action=$received", "", nil); status != 200 || totalOf(body) != "0" {
		t.Errorf("second $received: %d\n%s", status, body)
	}
	if status, body := srv.do(t, "GET", "/praxis/Communication?action=$received&all=true", "", nil); status != 200 || totalOf(body) != "2" {
		t.Errorf("all=true: %d\n%s", status, body)
	}
	if status, body := srv.do(t, "GET", "/praxis/Communication?action=$received&all=true&since=2999-01-01", "", nil); status != 200 || totalOf(body) != "0" {
		t.Errorf("since: %d\n%s", status, body)
	}

	// the short form: red builds gematik's Reply
	status, body = srv.do(t, "POST", "/praxis/Communication?action=$reply&prescriptionid="+task1+"&kvnr="+holderKVNR, fhirXML,
		replyParams([2]string{"text", replyText}, [2]string{"pickUpCodeHR", "12341234"}))
	if status != 201 {
		t.Fatalf("$reply: %d\n%s", status, body)
	}
	mustContain(t, "$reply", body, "GEM_ERP_PR_Communication_Reply|1.5", pharmacyTelematikID, "<sent value=", "Task/"+task1)
	// the full form, as api-erp's example request has it
	full := `<Communication xmlns="http://hl7.org/fhir">
  <meta><profile value="https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Communication_Reply|1.5"/></meta>
  <basedOn><reference value="Task/` + task2 + `"/></basedOn>
  <status value="unknown"/>
  <recipient><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="` + representativeKVNR + `"/></identifier></recipient>
  <payload><contentString value="{&quot;version&quot;:1,&quot;supplyOptionsType&quot;:&quot;delivery&quot;,&quot;info_text&quot;:&quot;Unser Bote kommt morgen.&quot;}"/></payload>
</Communication>`
	if status, body := srv.do(t, "POST", "/praxis/Communication?action=$reply", fhirXML, []byte(full)); status != 201 {
		t.Fatalf("full $reply: %d\n%s", status, body)
	}

	// what arrived at the Fachdienst, read by the patient
	patient := &fachdienst.Client{BaseURL: fd, Identity: fachdienst.Identity{ProfessionOID: fachdienst.OIDVersicherter, ID: holderKVNR}}
	got, err := patient.Communications(t.Context(), url.Values{"received": {"NULL"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("the patient's unread messages: %+v", got)
	}
	r := got[0]
	if r.Sender != pharmacyTelematikID || r.Recipient != holderKVNR || r.TaskID != task1 || r.Profile != fachdienst.ProfileCommunicationReply ||
		!strings.Contains(string(r.XML), fachdienst.SystemKVNR) || !strings.Contains(string(r.XML), fachdienst.SystemTelematikID) {
		t.Errorf("the reply at the Fachdienst: %+v\n%s", r, r.XML)
	}
	p, err := fachdienst.ParseReplyPayload(r.Payload)
	if err != nil || p.InfoText != replyText || p.PickUpCodeHR != "12341234" || p.SupplyOptionsType != fachdienst.SupplyOnPremise {
		t.Errorf("the reply's payload %+v: %v", p, err)
	}

	// every problem at once, each where it is, none quoting the message
	long := strings.Repeat("x", 501)
	status, body = srv.do(t, "POST", "/praxis/Communication?action=$reply&prescriptionid=160.000.000.000.000.00&kvnr=", fhirXML,
		replyParams([2]string{"text", long}, [2]string{"farbe", "blau"}))
	if status != 400 {
		t.Errorf("a broken short form: %d\n%s", status, body)
	}
	mustContain(t, "a broken short form", body, `<expression value="prescriptionid"/>`, `<expression value="kvnr"/>`,
		`<expression value="Parameters.parameter[1].name"/>`, `<expression value="Parameters.parameter.where(name=&apos;text&apos;).value"/>`, "text: has 501 characters, at most 500")
	if strings.Contains(body, long) {
		t.Errorf("the error quotes the message:\n%s", body)
	}
	toPharmacy := strings.Replace(strings.Replace(full, "http://fhir.de/sid/gkv/kvid-10", fachdienst.SystemTelematikID, 1), representativeKVNR, "3-SMC-B-Testkarte-883110000129070", 1)
	if status, body := srv.do(t, "POST", "/praxis/Communication?action=$reply", fhirXML, []byte(toPharmacy)); status != 400 ||
		!strings.Contains(body, "Communication.recipient.identifier.system") || !strings.Contains(body, "Communication.recipient.identifier.value") {
		t.Errorf("a reply to a pharmacy: %d\n%s", status, body)
	}
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/praxis/Communication", "name an action"},
		{"GET", "/praxis/Communication?action=$fly", "unknown Communication action"},
		{"POST", "/praxis/Communication?action=$received", "is called with GET"},
		{"GET", "/praxis/Communication?action=$reply", "is called with POST"},
		{"GET", "/praxis/Communication?action=$received&all=yes", "all is true or false"},
		{"GET", "/praxis/Communication?action=$received&since=gestern", "YYYY-MM-DD"},
	} {
		if status, body := srv.do(t, c.method, c.path, "", nil); status < 400 || status >= 500 || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d\n%s", c.method, c.path, status, body)
		}
	}

	// pass-through: the texts are neither stored nor logged
	texts := []string{replyText, "Unser Bote kommt", "Morsecode", "Nachbarin", "Lena Sommer"}
	files, _ := filepath.Glob(filepath.Join(in.dir, "red.db*"))
	for _, f := range files {
		raw := readFile(t, f)
		for _, s := range texts {
			if strings.Contains(string(raw), s) {
				t.Errorf("%s holds %q", filepath.Base(f), s)
			}
		}
	}
	for _, s := range append(texts, holderKVNR, task1) {
		if strings.Contains(srv.output.String(), s) {
			t.Errorf("red's output holds %q", s)
		}
	}
}

// RED's role rules: messages are the pharmacy's; a practice's SMC-B alone is refused.
func TestPharmacyMessagesNeedPharmacySMCB(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "ti", "konnektor", "konnektorsim", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)\{\s*"handle": "SMC-B-17".*?"pins": \{[^}]*\}\s*\}\s*\},?`)
	cfg := filepath.Join(t.TempDir(), "konnektor.json")
	if err := os.WriteFile(cfg, []byte(re.ReplaceAllString(string(src), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := tiServer(t, "--konnektor-config", cfg)
	if status, body := srv.do(t, "GET", "/praxis/Communication?action=$received", "", nil); status != 403 || !strings.Contains(body, "SMC-B of a pharmacy") {
		t.Errorf("$received: %d\n%s", status, body)
	}
	status, body := srv.do(t, "POST", "/praxis/Communication?action=$reply&prescriptionid=160.000.000.000.001.54&kvnr="+holderKVNR, fhirXML,
		replyParams([2]string{"text", replyText}))
	if status != 403 || !strings.Contains(body, "SMC-B of a pharmacy") {
		t.Errorf("$reply: %d\n%s", status, body)
	}
}

// A Fachdienst answering nonsense gives a clear 502 naming it and, for an incomplete message,
// where it is incomplete; its refusals reach the caller without their diagnostics.
func TestPharmacyMessagesFromABrokenFachdienst(t *testing.T) {
	const secret = "Diagnose: Ramipril 5 mg"
	answers := map[string]struct {
		status int
		body   string
	}{
		"garbage": {200, "<html>gateway</html>"},
		"no sent": {200, `<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><total value="1"/><entry><resource><Communication>
<id value="c-1"/><meta><profile value="https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Communication_DispReq|1.5"/></meta>
<basedOn><reference value="Task/160.000.000.000.001.54"/></basedOn><status value="unknown"/>
<recipient><identifier><system value="https://gematik.de/fhir/sid/telematik-id"/><value value="` + pharmacyTelematikID + `"/></identifier></recipient>
<sender><identifier><system value="http://fhir.de/sid/gkv/kvid-10"/><value value="` + holderKVNR + `"/></identifier></sender>
</Communication></resource></entry></Bundle>`},
		"refusal": {400, `<OperationOutcome xmlns="http://hl7.org/fhir"><issue><severity value="error"/><code value="invalid"/>
<details><text value="Invalid payload: does not conform to expected JSON schema:"/></details><diagnostics value="` + secret + `"/></issue></OperationOutcome>`},
	}
	var mode string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[mode]
		w.Header().Set("Content-Type", fachdienst.ContentType)
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	defer fake.Close()
	srv, _ := tiServer(t, "--fachdienst-url", fake.URL)
	for _, c := range []struct {
		mode, method, path string
		body               []byte
		status             int
		want               []string
	}{
		{"garbage", "GET", "/praxis/Communication?action=$received", nil, 502, []string{"E-Rezept-Fachdienst", "all=true"}},
		{"no sent", "GET", "/praxis/Communication?action=$received", nil, 502, []string{"without sent", "ofType(Communication)[0].sent"}},
		{"refusal", "POST", "/praxis/Communication?action=$reply&prescriptionid=160.000.000.000.001.54&kvnr=" + holderKVNR,
			replyParams([2]string{"text", replyText}), 422, []string{"E-Rezept-Fachdienst refused", "Invalid payload"}},
	} {
		t.Run(c.mode, func(t *testing.T) {
			mode = c.mode
			ct := ""
			if c.body != nil {
				ct = fhirXML
			}
			status, body := srv.do(t, c.method, c.path, ct, c.body)
			if status != c.status {
				t.Errorf("%d, want %d\n%s", status, c.status, body)
			}
			mustContain(t, c.mode, body, c.want...)
			if strings.Contains(body+srv.output.String(), secret) || strings.Contains(body+srv.output.String(), replyText) {
				t.Errorf("the message or the Fachdienst's diagnostics leaked:\n%s\n%s", body, srv.output)
			}
		})
	}
}
