package epasim_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
)

func TestNewRefusesBadRecords(t *testing.T) {
	valid := epasim.Record{KVNR: epa1Patient, HomeCommunityID: epa1HC}
	tests := []struct {
		name    string
		records []epasim.Record
	}{
		{"refuses a KVNR with a wrong check digit", []epasim.Record{{KVNR: "X110411318", HomeCommunityID: epa1HC}}},
		{"refuses a home community that is no urn:oid", []epasim.Record{{KVNR: epa1Patient, HomeCommunityID: "1.2.3"}}},
		{"refuses two records for one KVNR", []epasim.Record{valid, valid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := epasim.New(epasim.Config{Records: tt.records}); err == nil {
				t.Fatal("New accepted the records")
			}
		})
	}
}

func TestDefaultRecords(t *testing.T) {
	sim, err := epasim.New(epasim.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	tests := []struct {
		name   string
		kvnr   string
		status int // of the record status
		ent    int // of the entitlement lookup by the default practice
	}{
		{"has a record entitling the default practice", epasim.KVNRAuthorized, http.StatusNoContent, http.StatusOK},
		{"has a record not entitling the default practice", epasim.KVNRNotAuthorized, http.StatusNoContent, http.StatusForbidden},
		{"has no record", epasim.KVNRWithoutRecord, http.StatusNotFound, http.StatusNotFound},
		{"has the record of the ePA 1 sample", epa1Patient, http.StatusNoContent, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := call(t, srv, http.MethodGet, epa.PathRecordStatus, "", tt.kvnr, "", nil); a.status != tt.status {
				t.Errorf("record status: HTTP %d, want %d", a.status, tt.status)
			}
			if a := call(t, srv, http.MethodGet, epa.PathEntitlements, epasim.DefaultTelematikID, tt.kvnr, "", nil); a.status != tt.ent {
				t.Errorf("entitlement: HTTP %d, want %d", a.status, tt.ent)
			}
		})
	}
}

func TestRecordStatus(t *testing.T) {
	srv := newServer(t, "")
	tests := []struct {
		name, kvnr string
		status     int
		code, hc   string
	}{
		{"answers 204 with the home community for a record", epa2Patient, http.StatusNoContent, "", epa2HC},
		{"answers 404 noHealthRecord without a record", epasim.KVNRWithoutRecord, http.StatusNotFound, "noHealthRecord", ""},
		{"answers 400 for a KVNR with a wrong check digit", "X110411318", http.StatusBadRequest, "malformedRequest", ""},
		{"answers 400 without x-insurantid", "", http.StatusBadRequest, "malformedRequest", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+epa.PathRecordStatus, nil)
			if tt.kvnr != "" {
				req.Header.Set(epa.HeaderInsurantID, tt.kvnr)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get(epa.HeaderHomeCommunityID); got != tt.hc {
				t.Errorf("home community %q, want %q", got, tt.hc)
			}
			if tt.code != "" {
				if a := call(t, srv, http.MethodGet, epa.PathRecordStatus, "", tt.kvnr, "", nil); errorCode(t, a) != tt.code {
					t.Errorf("errorCode %q, want %q", errorCode(t, a), tt.code)
				}
			}
		})
	}
}

func TestEntitlementLookup(t *testing.T) {
	srv := newServer(t, "")
	tests := []struct {
		name, caller, kvnr string
		status             int
		code               string
	}{
		{"answers 200 for an entitled caller", epa2Caller, epa2Replace, http.StatusOK, ""},
		{"answers 403 notEntitled for a caller the insured did not entitle", stranger, epa2Replace, http.StatusForbidden, "notEntitled"},
		{"answers 403 notEntitled when the entitlement expired", expired, epa2Replace, http.StatusForbidden, "notEntitled"},
		{"answers 403 invalAuth without a Telematik-ID", "", epa2Replace, http.StatusForbidden, "invalAuth"},
		{"answers 404 without a record", epa2Caller, epasim.KVNRWithoutRecord, http.StatusNotFound, "noHealthRecord"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, http.MethodGet, epa.PathEntitlements, tt.caller, tt.kvnr, "", nil)
			if a.status != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.code != "" && errorCode(t, a) != tt.code {
				t.Errorf("errorCode %q, want %q", errorCode(t, a), tt.code)
			}
			if tt.code == "" && !strings.Contains(string(a.body), `"actorId":"`+tt.caller+`"`) {
				t.Errorf("answer %s does not name the caller", a.body)
			}
		})
	}
}

func TestSetEntitlementSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := newServer(t, dir)
	if a := call(t, srv, http.MethodPost, epa.PathEntitlements, stranger, epa2Replace, "application/json", []byte(`{}`)); a.status != http.StatusBadRequest {
		t.Fatalf("without jwt: HTTP %d, want 400", a.status)
	}
	a := call(t, srv, http.MethodPost, epa.PathEntitlements, stranger, epa2Replace, "application/json", []byte(`{"jwt":"proof"}`))
	if a.status != http.StatusCreated {
		t.Fatalf("set: HTTP %d %s", a.status, a.body)
	}
	want := testNow.Add(epasim.PracticeEntitlementDays * 24 * time.Hour).Format(time.RFC3339)
	if !strings.Contains(string(a.body), want) {
		t.Errorf("answer %s, want validTo %s", a.body, want)
	}
	restarted := newServer(t, dir)
	if a := call(t, restarted, http.MethodGet, epa.PathEntitlements, stranger, epa2Replace, "", nil); a.status != http.StatusOK {
		t.Fatalf("after restart: HTTP %d %s", a.status, a.body)
	}
}

// replaceTarget is the entry request_replace.xml replaces.
const replaceTarget = "urn:uuid:a5c45ed4-f8c4-4ded-8018-cf67e3b5cf63"

// replaceTargetRequest registers the entry request_replace.xml replaces: request_noreplace.xml
// moved to the other patient, with the target's entryUUID and its own uniqueId.
func replaceTargetRequest(t testing.TB) string {
	return strings.NewReplacer(
		epa2Patient, epa2Replace,
		"urn:uuid:fefd2e4d-f1b5-496f-a0ce-acb8a210d368", replaceTarget,
		"2.25.160922221051382816658", "2.25.1",
	).Replace(sample(t, "epa2-diga-request_noreplace.xml"))
}

func TestAcceptsSampleRequests(t *testing.T) {
	pdf := []byte("%PDF-1.4\n% sample document\n")
	tests := []struct {
		name, file, caller, kvnr string
		seed                     bool // register the entry the request replaces first
	}{
		{"accepts the ePA 2 DiGA request", "epa2-diga-request_noreplace.xml", epa2Caller, epa2Patient, false},
		{"accepts the ePA 2 DiGA replacement", "epa2-diga-request_replace.xml", epa2Caller, epa2Replace, true},
		{"accepts the ePA 1 request with symbolic ids", "epa1-provideandregister.xml", epa1Caller, epa1Patient, false},
	}
	for _, form := range []string{"MTOM", "inline"} {
		for _, tt := range tests {
			t.Run(tt.name+" as "+form, func(t *testing.T) {
				srv := newServer(t, "")
				if tt.seed {
					if status, codes := submit(t, srv, tt.caller, "", replaceTargetRequest(t), form, pdf); status != "Success" {
						t.Fatalf("seed: %s %v", status, codes)
					}
				}
				status, codes := submit(t, srv, tt.caller, "", sample(t, tt.file), form, pdf)
				if status != "Success" {
					t.Fatalf("%s %v, want Success", status, codes)
				}
				got := entries(t, srv, tt.caller, tt.kvnr, "Approved", "Deprecated")
				approved := 0
				for id, s := range got {
					if !strings.HasPrefix(id, "urn:uuid:") {
						t.Errorf("entry id %q is not a urn:uuid", id)
					}
					if s == "Approved" {
						approved++
					}
				}
				if approved != 1 {
					t.Errorf("%d approved entries, want 1: %v", approved, got)
				}
				if tt.seed && got[replaceTarget] != "Deprecated" {
					t.Errorf("replaced entry is %q, want Deprecated", got[replaceTarget])
				}
			})
		}
	}
}

// submit posts an ITI-41 envelope as MTOM or with inline documents and returns the result.
func submit(t testing.TB, s *httptest.Server, caller, kvnr, envelope, form string, content []byte) (string, []string) {
	t.Helper()
	var a answer
	if form == "MTOM" {
		body, ct := mtom(t, envelope, content)
		a = call(t, s, http.MethodPost, epa.PathDocumentService, caller, kvnr, ct, body)
	} else {
		a = postSOAP(t, s, caller, kvnr, inline(envelope, content))
	}
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", a.status, a.body)
	}
	op, _ := soapBody(t, a)
	if op.Tag != "RegistryResponse" {
		t.Fatalf("answer is %s, want RegistryResponse", op.Tag)
	}
	return registryResult(t, op)
}

func TestRefusesMalformedSubmissions(t *testing.T) {
	noreplace := sample(t, "epa2-diga-request_noreplace.xml")
	content := []byte("%PDF-1.4\n")
	drop := func(s, from, to string) string {
		i, j := strings.Index(s, from), strings.Index(s, to)
		if i < 0 || j < i {
			t.Fatalf("sample lacks %q…%q", from, to)
		}
		return s[:i] + s[j:]
	}
	classCode := `<ns5:Classification classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"`
	tests := []struct {
		name     string
		envelope string
		form     string
		want     []string
	}{
		{"refuses a SubmissionSet without patientId", strings.Replace(noreplace, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", "urn:uuid:00000000-0000-4000-8000-000000000000", 1),
			"inline", []string{"XDSRegistryMetadataError"}},
		{"refuses a patient without record", strings.ReplaceAll(noreplace, epa2Patient, epasim.KVNRWithoutRecord),
			"inline", []string{"XDSUnknownPatientId"}},
		{"refuses a KVNR with a wrong check digit", strings.ReplaceAll(noreplace, epa2Patient, "X110474971"),
			"inline", []string{"XDSRegistryMetadataError"}},
		{"refuses a DocumentEntry of another patient", strings.Replace(noreplace, "X110474970^^^&amp;1.2.276.0.76.4.8&amp;ISO\" objectType=\"urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier\" id=\"5fff",
			"X110425360^^^&amp;1.2.276.0.76.4.8&amp;ISO\" objectType=\"urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier\" id=\"5fff", 1),
			"inline", []string{"XDSPatientIdDoesNotMatch"}},
		{"refuses a DocumentEntry without classCode", drop(noreplace, classCode, `<ns5:Classification classificationScheme="urn:uuid:f4f85eac`),
			"inline", []string{"XDSRegistryMetadataError"}},
		{"refuses a DocumentEntry without Document", drop(noreplace, "<ns9:Document ", "</ns9:ProvideAndRegisterDocumentSetRequest>"),
			"inline", []string{"XDSMissingDocument"}},
		{"refuses an xop:Include without its MIME part", noreplace,
			"bare", []string{"XDSMissingDocument"}},
		{"refuses a Document without DocumentEntry", strings.Replace(noreplace, `<ns9:Document id="urn:uuid:fefd2e4d`, `<ns9:Document id="urn:uuid:00000000-0000-4000-8000-000000000001"/><ns9:Document id="urn:uuid:fefd2e4d`, 1),
			"inline", []string{"XDSMissingDocumentMetadata"}},
		{"refuses a DocumentEntry outside the SubmissionSet", drop(noreplace, "<ns5:Association ", "</ns5:RegistryObjectList>"),
			"inline", []string{"XDSRegistryMetadataError"}},
		{"refuses a replacement of an unknown entry", sample(t, "epa2-diga-request_replace.xml"),
			"inline", []string{"UnresolvedReferenceException"}},
		{"refuses another home community", strings.ReplaceAll(noreplace, epa2HC, epa1HC),
			"inline", []string{"XDSUnknownCommunity"}},
		{"refuses a wrong size", strings.Replace(noreplace, `<ns5:Slot name="languageCode">`, `<ns5:Slot name="size"><ns5:ValueList><ns5:Value>1</ns5:Value></ns5:ValueList></ns5:Slot><ns5:Slot name="languageCode">`, 1),
			"inline", []string{"XDSRepositoryMetadataError"}},
		{"refuses a request without SubmitObjectsRequest", drop(noreplace, "<ns8:SubmitObjectsRequest>", "<ns9:Document "),
			"inline", []string{"XDSRegistryMetadataError"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, "")
			var status string
			var codes []string
			if tt.form == "bare" {
				a := postSOAP(t, srv, epa2Caller, "", tt.envelope)
				op, _ := soapBody(t, a)
				status, codes = registryResult(t, op)
			} else {
				status, codes = submit(t, srv, epa2Caller, "", tt.envelope, tt.form, content)
			}
			if status != "Failure" {
				t.Fatalf("status %s, want Failure", status)
			}
			slices.Sort(codes)
			codes = slices.Compact(codes)
			if !slices.Equal(codes, tt.want) {
				t.Errorf("error codes %v, want %v", codes, tt.want)
			}
			if got := entries(t, srv, epa2Caller, epa2Patient, "Approved", "Deprecated"); len(got) != 0 {
				t.Errorf("a refused submission left entries: %v", got)
			}
		})
	}
}

func TestRefusesDuplicateUniqueID(t *testing.T) {
	srv := newServer(t, "")
	env := sample(t, "epa2-diga-request_noreplace.xml")
	if status, codes := submit(t, srv, epa2Caller, "", env, "inline", []byte("a")); status != "Success" {
		t.Fatalf("first: %s %v", status, codes)
	}
	again := strings.ReplaceAll(env, "urn:uuid:fefd2e4d-f1b5-496f-a0ce-acb8a210d368", "urn:uuid:fefd2e4d-f1b5-496f-a0ce-acb8a210d369")
	status, codes := submit(t, srv, epa2Caller, "", again, "inline", []byte("b"))
	if status != "Failure" || !slices.Contains(codes, "XDSDuplicateUniqueIdInRegistry") {
		t.Errorf("second: %s %v, want Failure XDSDuplicateUniqueIdInRegistry", status, codes)
	}
}

func TestRefusesUnreadableEnvelopes(t *testing.T) {
	srv := newServer(t, "")
	tests := []struct{ name, body string }{
		{"answers a fault for XML that is not well-formed", "<soap:Envelope"},
		{"answers a fault for a DOCTYPE", `<!DOCTYPE x [<!ENTITY a "b">]><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x/></soap:Body></soap:Envelope>`},
		{"answers a fault for a SOAP 1.1 envelope", `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`},
		{"answers a fault for an unknown operation", `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x/></soap:Body></soap:Envelope>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postSOAP(t, srv, epa2Caller, "", tt.body)
			if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "Fault") {
				t.Errorf("HTTP %d %s, want 400 with a SOAP Fault", a.status, a.body)
			}
		})
	}
}

func TestRefusesOversizedRequests(t *testing.T) {
	sim, err := epasim.New(epasim.Config{Records: testRecords(), Now: clock, MaxBodyBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	a := postSOAP(t, srv, epa2Caller, "", inline(sample(t, "epa2-diga-request_noreplace.xml"), []byte("x")))
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "larger than 1000 bytes") {
		t.Errorf("HTTP %d %s, want 400 with a SOAP Fault", a.status, a.body)
	}
}

func TestRefusesCallersWithoutEntitlement(t *testing.T) {
	srv := newServer(t, "")
	env := inline(sample(t, "epa2-diga-request_noreplace.xml"), []byte("x"))
	tests := []struct {
		name, caller, kvnr string
		envelope           string
		status             int
		code               string
	}{
		{"refuses an upload by a caller the insured did not entitle", stranger, "", env, http.StatusForbidden, "notEntitled"},
		{"refuses an upload without Telematik-ID", "", "", env, http.StatusForbidden, "invalAuth"},
		{"refuses a query by a caller the insured did not entitle", stranger, epa2Patient, findDocuments(epa2Patient, "ObjectRef", "Approved"), http.StatusForbidden, "notEntitled"},
		{"refuses a retrieval by a caller the insured did not entitle", stranger, epa2Patient, retrieve("1.2.276.0.76.3.1.466.2.1.6.90.1", "2.25.160922221051382816658"), http.StatusForbidden, "notEntitled"},
		{"refuses a mismatch of x-insurantid and patientId", epa2Caller, epa1Patient, env, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postSOAP(t, srv, tt.caller, tt.kvnr, tt.envelope)
			if a.status != tt.status {
				t.Fatalf("HTTP %d %s, want %d", a.status, a.body, tt.status)
			}
			if tt.code != "" {
				if got := errorCode(t, a); got != tt.code {
					t.Errorf("errorCode %q, want %q", got, tt.code)
				}
				return
			}
			op, _ := soapBody(t, a)
			if status, codes := registryResult(t, op); status != "Failure" || !slices.Equal(codes, []string{"XDSPatientIdDoesNotMatch"}) {
				t.Errorf("%s %v, want Failure XDSPatientIdDoesNotMatch", status, codes)
			}
		})
	}
	if got := entries(t, srv, epa2Caller, epa2Patient, "Approved"); len(got) != 0 {
		t.Errorf("refused uploads left entries: %v", got)
	}
}

func TestQueriesAndRetrieval(t *testing.T) {
	srv := newServer(t, "")
	content := []byte{0, 1, 2, 0xff, '\r', '\n', 'x'}
	if status, codes := submit(t, srv, epa2Caller, "", sample(t, "epa2-diga-request_noreplace.xml"), "MTOM", content); status != "Success" {
		t.Fatalf("upload: %s %v", status, codes)
	}
	const uid, repo = "2.25.160922221051382816658", "1.2.276.0.76.3.1.466.2.1.6.90.1"

	t.Run("finds the entry with its metadata", func(t *testing.T) {
		a := postSOAP(t, srv, epa2Caller, epa2Patient, findDocuments(epa2Patient, "LeafClass", "Approved"))
		op, _ := soapBody(t, a)
		eos := op.SelectElement("RegistryObjectList").SelectElements("ExtrinsicObject")
		if len(eos) != 1 {
			t.Fatalf("%d entries, want 1", len(eos))
		}
		body := string(a.body)
		for _, want := range []string{`value="` + uid + `"`, `nodeRepresentation="DUR"`, `nodeRepresentation="urn:gematik:ig:diga:v1.1"`,
			`<rim:Value>` + repo + `</rim:Value>`, `<rim:Value>7</rim:Value>`, `value="DigaDocPdf"`} {
			if !strings.Contains(body, want) {
				t.Errorf("answer lacks %s", want)
			}
		}
	})
	for _, tt := range []struct {
		name, slot string
		want       int
	}{
		{"finds the entry by its classCode", `('DUR^^1.3.6.1.4.1.19376.3.276.1.5.8')`, 1},
		{"finds the entry by one of several classCodes", `('BEF^^1.3.6.1.4.1.19376.3.276.1.5.8','DUR^^1.3.6.1.4.1.19376.3.276.1.5.8')`, 1},
		{"finds nothing for another classCode", `('BEF^^1.3.6.1.4.1.19376.3.276.1.5.8')`, 0},
		{"finds nothing for the classCode in another system", `('DUR^^1.2.3')`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := strings.Replace(findDocuments(epa2Patient, "ObjectRef", "Approved"), "</rim:AdhocQuery>",
				`<rim:Slot name="$XDSDocumentEntryClassCode"><rim:ValueList><rim:Value>`+tt.slot+`</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery>`, 1)
			op, _ := soapBody(t, postSOAP(t, srv, epa2Caller, epa2Patient, env))
			if refs := op.SelectElement("RegistryObjectList").SelectElements("ObjectRef"); len(refs) != tt.want {
				t.Errorf("%d entries, want %d", len(refs), tt.want)
			}
		})
	}
	t.Run("answers ObjectRefs when asked", func(t *testing.T) {
		op, _ := soapBody(t, postSOAP(t, srv, epa2Caller, epa2Patient, findDocuments(epa2Patient, "ObjectRef", "Approved")))
		if refs := op.SelectElement("RegistryObjectList").SelectElements("ObjectRef"); len(refs) != 1 {
			t.Errorf("%d ObjectRefs, want 1", len(refs))
		}
	})
	t.Run("answers an unknown stored query with XDSUnknownStoredQuery", func(t *testing.T) {
		env := strings.Replace(findDocuments(epa2Patient, "LeafClass", "Approved"), "14d4debf", "00000000", 1)
		op, _ := soapBody(t, postSOAP(t, srv, epa2Caller, epa2Patient, env))
		if status, codes := registryResult(t, op); status != "Failure" || !slices.Equal(codes, []string{"XDSUnknownStoredQuery"}) {
			t.Errorf("%s %v", status, codes)
		}
	})
	t.Run("answers a FindDocuments without status with XDSStoredQueryMissingParam", func(t *testing.T) {
		env := findDocuments(epa2Patient, "LeafClass", "Approved")
		i := strings.Index(env, `<rim:Slot name="$XDSDocumentEntryStatus">`)
		env = env[:i] + env[strings.Index(env, "</rim:AdhocQuery>"):]
		op, _ := soapBody(t, postSOAP(t, srv, epa2Caller, epa2Patient, env))
		if status, codes := registryResult(t, op); status != "Failure" || !slices.Equal(codes, []string{"XDSStoredQueryMissingParam"}) {
			t.Errorf("%s %v", status, codes)
		}
	})
	t.Run("answers FindDocuments for a patient without record with XDSUnknownPatientId", func(t *testing.T) {
		op, _ := soapBody(t, postSOAP(t, srv, epa2Caller, "", findDocuments(epasim.KVNRWithoutRecord, "LeafClass", "Approved")))
		if status, codes := registryResult(t, op); status != "Failure" || !slices.Equal(codes, []string{"XDSUnknownPatientId"}) {
			t.Errorf("%s %v", status, codes)
		}
	})

	retrievals := []struct {
		name, repo, uid string
		mtom            bool
		status          string
		codes           []string
	}{
		{"retrieves the document inline", repo, uid, false, "Success", nil},
		{"retrieves the document as MTOM", repo, uid, true, "Success", nil},
		{"retrieves with a urn:oid repository", "urn:oid:" + repo, uid, false, "Success", nil},
		{"answers an unknown document with XDSDocumentUniqueIdError", repo, "2.25.42", false, "Failure", []string{"XDSDocumentUniqueIdError"}},
		{"answers an unknown repository with XDSUnknownRepositoryId", "1.2.3", "2.25.42", false, "Failure", []string{"XDSUnknownRepositoryId"}},
	}
	for _, tt := range retrievals {
		t.Run(tt.name, func(t *testing.T) {
			env := retrieve(tt.repo, tt.uid)
			var a answer
			if tt.mtom {
				body, ct := mtom(t, env, nil)
				a = call(t, srv, http.MethodPost, epa.PathDocumentService, epa2Caller, epa2Patient, ct, body)
			} else {
				a = postSOAP(t, srv, epa2Caller, epa2Patient, env)
			}
			op, parts := soapBody(t, a)
			status, codes := registryResult(t, op)
			if status != tt.status || !slices.Equal(codes, tt.codes) {
				t.Fatalf("%s %v, want %s %v", status, codes, tt.status, tt.codes)
			}
			if tt.status != "Success" {
				return
			}
			doc := op.FindElement("DocumentResponse/Document")
			var got []byte
			if tt.mtom {
				href := doc.SelectElement("Include").SelectAttrValue("href", "")
				got = parts[strings.TrimPrefix(href, "cid:")]
			} else {
				got, _ = base64.StdEncoding.DecodeString(doc.Text())
			}
			if string(got) != string(content) {
				t.Errorf("retrieved %q, want %q", got, content)
			}
			if mt := op.FindElement("DocumentResponse/mimeType").Text(); mt != "application/pdf" {
				t.Errorf("mimeType %q", mt)
			}
		})
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	content := []byte("%PDF-1.4 Befund\n")
	srv := newServer(t, dir)
	if status, codes := submit(t, srv, epa2Caller, "", sample(t, "epa2-diga-request_noreplace.xml"), "MTOM", content); status != "Success" {
		t.Fatalf("upload: %s %v", status, codes)
	}
	srv.Close()

	restarted := newServer(t, dir)
	if got := entries(t, restarted, epa2Caller, epa2Patient, "Approved"); len(got) != 1 {
		t.Fatalf("after restart %d entries, want 1", len(got))
	}
	op, _ := soapBody(t, postSOAP(t, restarted, epa2Caller, epa2Patient, retrieve("1.2.276.0.76.3.1.466.2.1.6.90.1", "2.25.160922221051382816658")))
	got, _ := base64.StdEncoding.DecodeString(op.FindElement("DocumentResponse/Document").Text())
	if string(got) != string(content) {
		t.Errorf("after restart retrieved %q, want %q", got, content)
	}

	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", path)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	registry, err := os.ReadFile(filepath.Join(dir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(registry), "Befund") || strings.Contains(string(registry), base64.StdEncoding.EncodeToString(content)) {
		t.Error("the registry holds document content")
	}
}

func TestRefusesOtherMethodsAndPaths(t *testing.T) {
	srv := newServer(t, "")
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"refuses GET on the document service", http.MethodGet, epa.PathDocumentService, http.StatusMethodNotAllowed},
		{"refuses POST on the record status", http.MethodPost, epa.PathRecordStatus, http.StatusMethodNotAllowed},
		{"answers 404 for other paths", http.MethodGet, "/epa/other", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := call(t, srv, tt.method, tt.path, epa2Caller, epa2Patient, "", nil); a.status != tt.status {
				t.Errorf("HTTP %d, want %d", a.status, tt.status)
			}
		})
	}
}
