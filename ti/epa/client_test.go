package epa_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/epa/epasim"
)

var testNow = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

const (
	practice = epasim.DefaultTelematikID
	expired  = "1-2-PRAXIS-ABGELAUFEN"
)

// records are the default records plus one whose entitlement of the practice has expired.
func records() []epasim.Record {
	rs := epasim.DefaultRecords(testNow)
	return append(rs, epasim.Record{KVNR: "M200000009", HomeCommunityID: epasim.HomeCommunityA,
		Entitlements: []epasim.Entitlement{{TelematikID: practice, ValidTo: testNow.Add(-time.Minute)}}})
}

// startSimulator runs a simulator over real HTTP keeping its state in dir ("" = memory).
func startSimulator(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	sim, err := epasim.New(epasim.Config{StateDir: dir, Records: records(), Now: clock})
	if err != nil {
		t.Fatalf("epasim.New: %v", err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return srv
}

func client(srv *httptest.Server, telematikID string) *epa.Client {
	return &epa.Client{BaseURL: srv.URL, HTTP: srv.Client(), TelematikID: telematikID,
		InstitutionName: "Praxis Dr. Beispiel", Now: clock, Timeout: 10 * time.Second}
}

// befund is a document as a practice would upload it.
func befund(content []byte) epa.Document {
	return epa.Document{
		Title:        "Befundbericht Röntgen Thorax",
		Comments:     "Aufnahme vom 28.02.",
		MimeType:     "application/pdf",
		FileName:     "befund.pdf",
		ClassCode:    epa.Code{Code: "BEF", Display: "Befundbericht"},
		TypeCode:     epa.Code{Code: "BEFU", Display: "Ergebnisse Diagnostik"},
		CreationTime: testNow.Add(-time.Hour),
		Author:       epa.Author{ID: "123456601", GivenName: "Erika", FamilyName: "Muster^mann", Prefix: "Dr."},
		Content:      content,
	}
}

func TestStatus(t *testing.T) {
	srv := startSimulator(t, "")
	until := testNow.Add(epasim.PracticeEntitlementDays * 24 * time.Hour)
	tests := []struct {
		name string
		kvnr string
		want epa.Status
	}{
		{"reports a record the practice may use", epasim.KVNRAuthorized,
			epa.Status{HomeCommunityID: epasim.HomeCommunityA, RecordExists: true, Authorized: true, AuthorizedUntil: until}},
		{"reports a record the practice may not use", epasim.KVNRNotAuthorized,
			epa.Status{HomeCommunityID: epasim.HomeCommunityB, RecordExists: true}},
		{"reports a record whose entitlement expired", "M200000009",
			epa.Status{HomeCommunityID: epasim.HomeCommunityA, RecordExists: true}},
		{"reports a missing record", epasim.KVNRWithoutRecord, epa.Status{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client(srv, practice).Status(context.Background(), tt.kvnr)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got != tt.want {
				t.Errorf("Status = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRefusesInvalidInputWithoutAsking(t *testing.T) {
	tests := []struct {
		name string
		c    *epa.Client
		kvnr string
	}{
		{"refuses a KVNR with a wrong check digit", &epa.Client{BaseURL: "http://127.0.0.1:1", TelematikID: practice}, "K123456782"},
		{"refuses a client without Telematik-ID", &epa.Client{BaseURL: "http://127.0.0.1:1"}, epasim.KVNRAuthorized},
		{"refuses a client without base URL", &epa.Client{TelematikID: practice}, epasim.KVNRAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.Status(context.Background(), tt.kvnr); err == nil {
				t.Error("Status accepted it")
			}
			if _, err := tt.c.Upload(context.Background(), tt.kvnr, befund([]byte("x"))); err == nil {
				t.Error("Upload accepted it")
			}
		})
	}
}

func TestUploadFindRetrieve(t *testing.T) {
	srv := startSimulator(t, "")
	c := client(srv, practice)
	ctx := context.Background()
	content := make([]byte, 256*3)
	for i := range content {
		content[i] = byte(i)
	}
	id, err := c.Upload(ctx, epasim.KVNRAuthorized, befund(content))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}

	found, err := c.Find(ctx, epasim.KVNRAuthorized)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if len(found) != 1 {
		t.Fatalf("Find returned %d entries, want 1", len(found))
	}
	e := found[0]
	checks := []struct{ what, got, want string }{
		{"id", e.ID, id},
		{"status", e.Status, "Approved"},
		{"title", e.Title, "Befundbericht Röntgen Thorax"},
		{"comments", e.Comments, "Aufnahme vom 28.02."},
		{"mime type", e.MimeType, "application/pdf"},
		{"file name", e.FileName, "befund.pdf"},
		{"classCode", e.ClassCode.Code + "|" + e.ClassCode.System, "BEF|" + epa.SystemClassCode},
		{"typeCode", e.TypeCode.Code + "|" + e.TypeCode.System, "BEFU|" + epa.SystemTypeCode},
		{"formatCode", e.FormatCode.Code, epa.DefaultFormatCode.Code},
		{"facility", e.HealthcareFacilityTypeCode.Code, "PRA"},
		{"practice setting", e.PracticeSettingCode.Code, "ALLG"},
		{"repository", e.RepositoryID, "1.2.276.0.76.3.1.315.3.2.1.1"},
		{"home community", e.HomeCommunityID, epasim.HomeCommunityA},
		{"author institution", e.AuthorInstitution, "Praxis Dr. Beispiel"},
		{"author Telematik-ID", e.AuthorTelematikID, practice},
		{"creation time", e.CreationTime.Format(time.RFC3339), testNow.Add(-time.Hour).Format(time.RFC3339)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
		}
	}
	if e.Size != int64(len(content)) || len(e.Hash) != 40 {
		t.Errorf("size %d hash %q", e.Size, e.Hash)
	}

	doc, err := c.Retrieve(ctx, epasim.KVNRAuthorized, id)
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if !bytes.Equal(doc.Content, content) {
		t.Error("Retrieve returned other bytes than were uploaded")
	}
	if doc.ID != id || doc.MimeType != "application/pdf" || doc.Title != e.Title || doc.ClassCode.Code != "BEF" {
		t.Errorf("Retrieve metadata = %+v", doc)
	}
}

func TestReplace(t *testing.T) {
	srv := startSimulator(t, "")
	c := client(srv, practice)
	ctx := context.Background()
	first, err := c.Upload(ctx, epasim.KVNRAuthorized, befund([]byte("v1")))
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.Find(ctx, epasim.KVNRAuthorized)
	if err != nil || len(found) != 1 {
		t.Fatalf("Find: %v %v", found, err)
	}
	next := befund([]byte("v2"))
	next.Replaces = found[0].EntryUUID
	second, err := c.Upload(ctx, epasim.KVNRAuthorized, next)
	if err != nil {
		t.Fatalf("Upload replacement: %v", err)
	}
	found, err = c.Find(ctx, epasim.KVNRAuthorized)
	if err != nil || len(found) != 1 || found[0].ID != second {
		t.Fatalf("after replacement Find = %v %v, want only %s", found, err, second)
	}
	if doc, err := c.Retrieve(ctx, epasim.KVNRAuthorized, first); err != nil || string(doc.Content) != "v1" {
		t.Errorf("the replaced version is no longer retrievable: %v", err)
	}
	again := befund([]byte("v3"))
	again.Replaces = "urn:uuid:00000000-0000-4000-8000-000000000000"
	_, err = c.Upload(ctx, epasim.KVNRAuthorized, again)
	var xe *epa.XDSError
	if !errors.As(err, &xe) || !xe.Has(epa.CodeUnresolvedReference) {
		t.Errorf("replacing an unknown entry: %v, want %s", err, epa.CodeUnresolvedReference)
	}
}

func TestRefusals(t *testing.T) {
	srv := startSimulator(t, "")
	ctx := context.Background()
	tests := []struct {
		name   string
		caller string
		kvnr   string
		op     func(c *epa.Client, kvnr string) error
		want   error
		code   string // XDS error code expected besides want
	}{
		{"refuses an upload by a practice the insured did not entitle", practice, epasim.KVNRNotAuthorized, upload, epa.ErrNotAuthorized, ""},
		{"refuses an upload after the entitlement expired", practice, "M200000009", upload, epa.ErrNotAuthorized, ""},
		{"refuses an upload without record", practice, epasim.KVNRWithoutRecord, upload, epa.ErrNoRecord, epa.CodeUnknownPatientID},
		{"refuses a search by a practice the insured did not entitle", practice, epasim.KVNRNotAuthorized, find, epa.ErrNotAuthorized, ""},
		{"refuses a search without record", practice, epasim.KVNRWithoutRecord, find, epa.ErrNoRecord, epa.CodeUnknownPatientID},
		{"refuses a retrieval by a practice the insured did not entitle", practice, epasim.KVNRNotAuthorized, retrieve, epa.ErrNotAuthorized, ""},
		{"answers an unknown document with ErrDocumentNotFound", practice, epasim.KVNRAuthorized, retrieve, epa.ErrDocumentNotFound, ""},
		{"refuses an unknown institution", "1-2-UNBEKANNT", epasim.KVNRAuthorized, upload, epa.ErrNotAuthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(client(srv, tt.caller), tt.kvnr)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.kvnr) {
				t.Errorf("error message %q repeats the KVNR", err)
			}
			if tt.code != "" {
				var xe *epa.XDSError
				if !errors.As(err, &xe) || !xe.Has(tt.code) {
					t.Errorf("error %v does not carry %s", err, tt.code)
				}
			}
		})
	}
	if found, err := client(srv, "1-2-ANDERE-PRAXIS").Find(ctx, epasim.KVNRNotAuthorized); err == nil {
		t.Errorf("Find by a stranger returned %v", found)
	}
}

func upload(c *epa.Client, kvnr string) error {
	_, err := c.Upload(context.Background(), kvnr, befund([]byte("x")))
	return err
}

func find(c *epa.Client, kvnr string) error {
	_, err := c.Find(context.Background(), kvnr)
	return err
}

func retrieve(c *epa.Client, kvnr string) error {
	_, err := c.Retrieve(context.Background(), kvnr, "2.25.12345")
	return err
}

func TestEntitle(t *testing.T) {
	srv := startSimulator(t, "")
	c := client(srv, practice)
	ctx := context.Background()
	until, err := c.Entitle(ctx, epasim.KVNRNotAuthorized, "eyJhbGciOiJFUzI1NiJ9.e30.sig")
	if err != nil {
		t.Fatalf("Entitle: %v", err)
	}
	st, err := c.Status(ctx, epasim.KVNRNotAuthorized)
	if err != nil || !st.Authorized || !st.AuthorizedUntil.Equal(until) {
		t.Fatalf("after Entitle Status = %+v %v", st, err)
	}
	if _, err := c.Upload(ctx, epasim.KVNRNotAuthorized, befund([]byte("x"))); err != nil {
		t.Errorf("Upload after Entitle: %v", err)
	}
	if _, err := c.Entitle(ctx, epasim.KVNRWithoutRecord, "proof"); !errors.Is(err, epa.ErrNoRecord) {
		t.Errorf("Entitle without record: %v, want ErrNoRecord", err)
	}
}

func TestDocumentsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	content := []byte("%PDF-1.7 Arztbrief")
	first := startSimulator(t, dir)
	id, err := client(first, practice).Upload(ctx, epasim.KVNRAuthorized, befund(content))
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := startSimulator(t, dir)
	c := client(second, practice)
	found, err := c.Find(ctx, epasim.KVNRAuthorized)
	if err != nil || len(found) != 1 || found[0].ID != id {
		t.Fatalf("after restart Find = %v %v", found, err)
	}
	doc, err := c.Retrieve(ctx, epasim.KVNRAuthorized, id)
	if err != nil || !bytes.Equal(doc.Content, content) {
		t.Fatalf("after restart Retrieve = %q %v", doc.Content, err)
	}
}

func TestRequiresDocumentMetadata(t *testing.T) {
	srv := startSimulator(t, "")
	c := client(srv, practice)
	tests := []struct {
		name   string
		change func(*epa.Document)
	}{
		{"refuses a document without content", func(d *epa.Document) { d.Content = nil }},
		{"refuses a document without MIME type", func(d *epa.Document) { d.MimeType = "" }},
		{"refuses a document without classCode", func(d *epa.Document) { d.ClassCode = epa.Code{} }},
		{"refuses a document without typeCode", func(d *epa.Document) { d.TypeCode = epa.Code{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := befund([]byte("x"))
			tt.change(&d)
			if _, err := c.Upload(context.Background(), epasim.KVNRAuthorized, d); err == nil {
				t.Error("Upload accepted it")
			}
		})
	}
	found, err := c.Find(context.Background(), epasim.KVNRAuthorized)
	if err != nil || len(found) != 0 {
		t.Errorf("refused documents reached the record: %v %v", found, err)
	}
}
