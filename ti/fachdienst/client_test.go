package fachdienst_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/fachdienst"
)

// apiExamples holds api-erp's request/response pairs (gematik's eRezept-Examples, Apache-2.0, see
// testdata/gematik/NOTICE); the simulator's tests read them here too.
const apiExamples = "testdata/gematik/eRezept-Examples/API-Examples/2025-01-15"

var (
	doctor   = fachdienst.Identity{ProfessionOID: fachdienst.OIDPraxisArzt, ID: "1-2-ARZT-Topp-Gluecklich-01"}
	pharmacy = fachdienst.Identity{ProfessionOID: fachdienst.OIDOeffentlicheApotheke, ID: "3-2-APO-XanthippeVeilchenblau01"}
	insured  = fachdienst.Identity{ProfessionOID: fachdienst.OIDVersicherter, ID: "X110614233"}
)

const (
	exampleTask       = "160.000.000.000.000.01"
	exampleAccessCode = "777bea0e13cc9c42ceec14aec3ddee2263325dc2c6c699db115f58fe423607ea"
	exampleSecret     = "c36ca26502892b371d252c99b496e31505ff449aca9bc69e231c58148f6233cf"
)

// seen is what the replay server received.
type seen struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
}

// replay serves one example answer and records the request.
func replay(t testing.TB, status int, file string, header http.Header) (*httptest.Server, *seen) {
	t.Helper()
	var body []byte
	if file != "" {
		body = fixture.Read(t, filepath.Join(apiExamples, file))
	}
	got := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.query, got.header = r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone()
		got.body, _ = io.ReadAll(r.Body)
		for k, vs := range header {
			w.Header()[k] = vs
		}
		if body != nil {
			w.Header().Set("Content-Type", fachdienst.ContentType)
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestClientReadsExampleAnswers(t *testing.T) {
	tests := []struct {
		name   string
		who    fachdienst.Identity
		file   string
		status int
		header http.Header
		call   func(context.Context, *fachdienst.Client) (any, error)
		check  func(t *testing.T, got any, req *seen)
	}{
		{
			name: "create returns the draft task with its access code", who: doctor,
			file: "erp_bereitstellen/01_response_taskCreate.xml", status: http.StatusCreated,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) { return c.Create(ctx, 160) },
			check: func(t *testing.T, got any, req *seen) {
				task := got.(fachdienst.Task)
				wantTask(t, task, exampleTask, fachdienst.StatusDraft, 160)
				if task.AccessCode != exampleAccessCode || task.PerformerType != "urn:oid:1.2.276.0.76.4.54" {
					t.Errorf("access code %q, performer %q", task.AccessCode, task.PerformerType)
				}
				wantRequest(t, req, http.MethodPost, "/Task/$create", doctor)
				body := parse(t, req.body)
				if code := fhir.ChildValue(body.SelectElement("parameter"), "valueCoding", "code"); code != "160" {
					t.Errorf("workflowType %q", code)
				}
			},
		},
		{
			name: "create 169 reads the direct-assignment flow type", who: doctor,
			file: "erp_steuerung_durch_le/02_response_taskCreate169.xml", status: http.StatusCreated,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) { return c.Create(ctx, 169) },
			check: func(t *testing.T, got any, _ *seen) {
				wantTask(t, got.(fachdienst.Task), "169.000.000.000.000.01", fachdienst.StatusDraft, 169)
			},
		},
		{
			name: "activate returns the ready task with KVNR and dates", who: doctor,
			file: "erp_bereitstellen/05_response_taskActivate.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Activate(ctx, exampleTask, exampleAccessCode, []byte("signed"))
			},
			check: func(t *testing.T, got any, req *seen) {
				task := got.(fachdienst.Task)
				wantTask(t, task, exampleTask, fachdienst.StatusReady, 160)
				if task.KVNR != "X123456789" || task.AcceptDate != "2025-02-12" || task.ExpiryDate != "2025-04-15" {
					t.Errorf("kvnr %q accept %q expiry %q", task.KVNR, task.AcceptDate, task.ExpiryDate)
				}
				if task.Prescription != "45d3987a-deb3-4dd0-a560-89e0aba760e4" || task.PatientConfirmation != "f8c2298f-7c00-4a68-af29-8a2862d55d43" {
					t.Errorf("inputs %q %q", task.Prescription, task.PatientConfirmation)
				}
				wantRequest(t, req, http.MethodPost, "/Task/"+exampleTask+"/$activate", doctor)
				if req.header.Get(fachdienst.HeaderAccessCode) != exampleAccessCode {
					t.Errorf("X-AccessCode %q", req.header.Get(fachdienst.HeaderAccessCode))
				}
				bin := parse(t, req.body).FindElement("parameter/resource/Binary")
				if fhir.ChildValue(bin, "contentType") != "application/pkcs7-mime" || fhir.ChildValue(bin, "data") != base64.StdEncoding.EncodeToString([]byte("signed")) {
					t.Errorf("ePrescription %s", fhir.Marshal(bin))
				}
			},
		},
		{
			name: "activate with status 252 keeps the LANR warning", who: doctor,
			file: "erp_steuerung_durch_le/04_response_taskActivate169.xml", status: 252,
			header: http.Header{"Warning": {`252 erp-server "Ungültige Arztnummer (LANR oder ZANR)"`}},
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Activate(ctx, "169.000.000.000.000.01", exampleAccessCode, []byte("signed"))
			},
			check: func(t *testing.T, got any, _ *seen) {
				task := got.(fachdienst.Task)
				wantTask(t, task, "169.000.000.000.000.01", fachdienst.StatusReady, 169)
				if !strings.Contains(task.Warning, "LANR") {
					t.Errorf("warning %q", task.Warning)
				}
			},
		},
		{
			name: "accept returns secret and signed prescription", who: pharmacy,
			file: "erp_abrufen/01_response_taskAccept.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Accept(ctx, exampleTask, exampleAccessCode)
			},
			check: func(t *testing.T, got any, req *seen) {
				acc := got.(fachdienst.Accepted)
				wantTask(t, acc.Task, exampleTask, fachdienst.StatusInProgress, 160)
				if acc.Secret != exampleSecret || string(acc.Bundle) != "Dies ist ein Beispiel" || acc.Task.Owner != pharmacy.ID {
					t.Errorf("secret %q bundle %q owner %q", acc.Secret, acc.Bundle, acc.Task.Owner)
				}
				wantRequest(t, req, http.MethodPost, "/Task/"+exampleTask+"/$accept", pharmacy)
				if req.query.Get("ac") != exampleAccessCode {
					t.Errorf("ac %q", req.query.Get("ac"))
				}
			},
		},
		{
			name: "accept of a PKV task skips the consent", who: pharmacy,
			file: "erp_abrufen/02_response_taskAcceptWithConsent.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Accept(ctx, "200.000.000.000.000.01", exampleAccessCode)
			},
			check: func(t *testing.T, got any, _ *seen) {
				// This example's Task lacks the Secret identifier; the client takes what it gets.
				acc := got.(fachdienst.Accepted)
				if acc.Task.FlowType != fachdienst.FlowApothekenpflichtigPKV || len(acc.Bundle) < 1000 || acc.Task.KVNR != "P987654321" {
					t.Errorf("flow %d, %d bytes, kvnr %q", acc.Task.FlowType, len(acc.Bundle), acc.Task.KVNR)
				}
			},
		},
		{
			name: "accept of a DiGA task", who: fachdienst.Identity{ProfessionOID: fachdienst.OIDKostentraeger, ID: "8-SMC-B-Testkarte-883110000116873"},
			file: "erp_diga/05_response_accept.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Accept(ctx, "162.000.000.000.000.01", exampleAccessCode)
			},
			check: func(t *testing.T, got any, _ *seen) {
				acc := got.(fachdienst.Accepted)
				if acc.Task.FlowType != fachdienst.FlowDiGA || acc.Task.PerformerType != "urn:oid:1.2.276.0.76.4.59" {
					t.Errorf("flow %d performer %q", acc.Task.FlowType, acc.Task.PerformerType)
				}
			},
		},
		{
			name: "secret recovery reads the accepted task", who: pharmacy,
			file: "erp_abrufen/03_request_recovery_secret.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.RecoverSecret(ctx, exampleTask, exampleAccessCode)
			},
			check: func(t *testing.T, got any, req *seen) {
				acc := got.(fachdienst.Accepted)
				if acc.Secret != exampleSecret || acc.Task.AccessCode != "" {
					t.Errorf("secret %q access code %q", acc.Secret, acc.Task.AccessCode)
				}
				wantRequest(t, req, http.MethodGet, "/Task/"+exampleTask, pharmacy)
				if req.query.Get("ac") != exampleAccessCode {
					t.Errorf("ac %q", req.query.Get("ac"))
				}
			},
		},
		{
			name: "close returns the signed receipt", who: pharmacy,
			file: "erp_abrufen/09_response_taskClose.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Close(ctx, exampleTask, exampleSecret, []byte("<Parameters xmlns=\"http://hl7.org/fhir\"/>"))
			},
			check: func(t *testing.T, got any, req *seen) {
				r := got.(fachdienst.Receipt)
				if r.PrescriptionID != exampleTask || r.Beneficiary != "3-SMC-B-Testkarte-883110000129070" {
					t.Errorf("receipt %q for %q", r.PrescriptionID, r.Beneficiary)
				}
				if len(r.Digest) != 32 || string(r.Signature) != "Dies ist ein Beispiel" || !r.End.After(r.Start) {
					t.Errorf("digest %d bytes, signature %q, %v..%v", len(r.Digest), r.Signature, r.Start, r.End)
				}
				wantRequest(t, req, http.MethodPost, "/Task/"+exampleTask+"/$close", pharmacy)
				if req.query.Get("secret") != exampleSecret || req.header.Get("Content-Type") != fachdienst.ContentType {
					t.Errorf("secret %q content type %q", req.query.Get("secret"), req.header.Get("Content-Type"))
				}
			},
		},
		{
			name: "get task of a completed task carries the receipt", who: pharmacy,
			file: "erp_abrufen/10_response_taskGet.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.GetTask(ctx, exampleTask, "", exampleSecret)
			},
			check: func(t *testing.T, got any, req *seen) {
				d := got.(fachdienst.TaskDetails)
				wantTask(t, d.Task, exampleTask, fachdienst.StatusCompleted, 160)
				if d.Receipt == nil || d.Receipt.PrescriptionID != exampleTask || d.Task.LastMedicationDispense.IsZero() {
					t.Errorf("receipt %+v, last dispense %v", d.Receipt, d.Task.LastMedicationDispense)
				}
				if req.query.Get("secret") != exampleSecret {
					t.Errorf("secret %q", req.query.Get("secret"))
				}
			},
		},
		{
			name: "a representative passes the access code as header", who: insured,
			file: "erp_abrufen/10_response_taskGet.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.GetTask(ctx, exampleTask, exampleAccessCode, "")
			},
			check: func(t *testing.T, got any, req *seen) {
				wantRequest(t, req, http.MethodGet, "/Task/"+exampleTask, insured)
				if req.header.Get(fachdienst.HeaderAccessCode) != exampleAccessCode || req.query.Has("ac") {
					t.Errorf("access code header %q, query %v", req.header.Get(fachdienst.HeaderAccessCode), req.query)
				}
			},
		},
		{
			name: "list tasks of an eGK", who: pharmacy,
			file: "erp_abrufen_egk/05_Response_Task.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.ListTasks(ctx, url.Values{"kvnr": {"X123456789"}, "pnw": {"H4sI"}})
			},
			check: func(t *testing.T, got any, req *seen) {
				tasks := got.([]fachdienst.Task)
				if len(tasks) != 2 || tasks[1].ID != "160.000.000.000.000.02" || tasks[0].AccessCode != exampleAccessCode {
					t.Errorf("tasks %+v", tasks)
				}
				wantRequest(t, req, http.MethodGet, "/Task", pharmacy)
				if req.query.Get("kvnr") != "X123456789" || req.query.Get("pnw") != "H4sI" {
					t.Errorf("query %v", req.query)
				}
			},
		},
		{
			name: "communications list", who: pharmacy,
			file: "erp_communication/08_response_GetAllMessages.xml", status: http.StatusOK,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				return c.Communications(ctx, url.Values{"sent": {"gt2025-01-14"}})
			},
			check: func(t *testing.T, got any, _ *seen) {
				cs := got.([]fachdienst.Communication)
				if len(cs) != 1 || cs[0].TaskID != exampleTask || cs[0].Sender != "X123456789" || !strings.Contains(cs[0].Payload, "onPremise") {
					t.Errorf("communications %+v", cs)
				}
			},
		},
		{
			name: "post communication returns the stored reply", who: pharmacy,
			file: "erp_communication/04_response_PostPharmacyToPatient.xml", status: http.StatusCreated,
			call: func(ctx context.Context, c *fachdienst.Client) (any, error) {
				data, err := os.ReadFile(filepath.Join(apiExamples, "erp_communication/03_request_PostPharmacyToPatient.xml"))
				if err != nil {
					return nil, err
				}
				return c.SendCommunication(ctx, data)
			},
			check: func(t *testing.T, got any, req *seen) {
				c := got.(fachdienst.Communication)
				if c.Sender != pharmacy.ID || c.Recipient != "X123456789" || c.Sent.IsZero() {
					t.Errorf("communication %+v", c)
				}
				wantRequest(t, req, http.MethodPost, "/Communication", pharmacy)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, req := replay(t, tc.status, tc.file, tc.header)
			c := &fachdienst.Client{BaseURL: srv.URL, HTTP: srv.Client(), Identity: tc.who}
			got, err := tc.call(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got, req)
		})
	}
}

func TestClientReportsOperationOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		file       string
		header     http.Header
		wantCode   string
		wantText   string
		wantDiag   string
		wantVAU    string
		wantStatus int
	}{
		{
			name: "validation error carries text and diagnostics", status: http.StatusBadRequest,
			file: "erp_statuscodes/01_example_operationOutcome_validation.xml", wantStatus: 400,
			wantCode: "invalid", wantText: "FHIR-Validation error", wantDiag: "-erp-angabeZuzahlungsstatus",
		},
		{
			name: "status conflict carries the task status", status: http.StatusConflict,
			file: "erp_statuscodes/02_example_operationOutcome_status.xml", wantStatus: 409,
			wantCode: "conflict", wantText: "Task has invalid status in-progress",
		},
		{
			name: "brute force header is kept", status: http.StatusForbidden,
			file: "erp_statuscodes/02_example_operationOutcome_status.xml", header: http.Header{"Vau-Error-Code": {"brute_force"}},
			wantStatus: 403, wantCode: "conflict", wantVAU: "brute_force",
		},
		{
			name: "non-FHIR bodies become the text", status: http.StatusBadGateway,
			wantStatus: 502, wantText: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := replay(t, tc.status, tc.file, tc.header)
			c := &fachdienst.Client{BaseURL: srv.URL, Identity: pharmacy}
			_, err := c.Accept(context.Background(), exampleTask, exampleAccessCode)
			var fe *fachdienst.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is no *fachdienst.Error", err)
			}
			if fe.Status != tc.wantStatus || fe.Code != tc.wantCode || !strings.Contains(fe.Text, tc.wantText) ||
				!strings.Contains(fe.Diagnostics, tc.wantDiag) || fe.VAUErrorCode != tc.wantVAU {
				t.Errorf("got %+v", fe)
			}
			if !strings.Contains(err.Error(), http.StatusText(tc.wantStatus)) {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestClientNeverHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &fachdienst.Client{BaseURL: srv.URL, Identity: doctor}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Create(ctx, 160)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestClientRefusesOversizedAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 40 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := &fachdienst.Client{BaseURL: srv.URL, Identity: doctor}
	if _, err := c.Create(context.Background(), 160); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v", err)
	}
}

func wantTask(t testing.TB, task fachdienst.Task, id string, status fachdienst.Status, flow fachdienst.FlowType) {
	t.Helper()
	if task.ID != id || task.Status != status || task.FlowType != flow {
		t.Errorf("task %s %s flow %d, want %s %s flow %d", task.ID, task.Status, task.FlowType, id, status, flow)
	}
	if task.AuthoredOn.IsZero() || task.LastModified.IsZero() || len(task.XML) == 0 {
		t.Errorf("task lacks authoredOn, lastModified or XML: %+v", task)
	}
}

func wantRequest(t testing.TB, req *seen, method, path string, who fachdienst.Identity) {
	t.Helper()
	if req.method != method || req.path != path {
		t.Errorf("request %s %s, want %s %s", req.method, req.path, method, path)
	}
	if got := fachdienst.IdentityFrom(req.header); got != who {
		t.Errorf("identity headers %+v, want %+v", got, who)
	}
}

func parse(t testing.TB, body []byte) *etree.Element {
	t.Helper()
	e, err := fhir.Parse(body, fhir.DefaultLimits)
	if err != nil {
		t.Fatalf("request body: %v", err)
	}
	return e
}
