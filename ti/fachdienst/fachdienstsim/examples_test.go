package fachdienstsim_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/fachdienst"
)

// post sends a raw request body as who, the way other FHIR clients would.
func (e *env) post(who fachdienst.Identity, path string, header http.Header, body []byte) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	who.Set(req.Header)
	req.Header.Set("Content-Type", fachdienst.ContentType)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, data
}

func TestSimulatorAcceptsExampleCreateAndActivateRequests(t *testing.T) {
	e := newEnv(t)
	status, body := e.post(doctorID, "/Task/$create", nil, fixture.Read(t, filepath.Join(apiExamples, "erp_steuerung_durch_le/01_request_taskCreate169.xml")))
	if status != http.StatusCreated {
		t.Fatalf("$create: %d %s", status, body)
	}
	root, err := fhir.Parse(body, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	task, err := fachdienst.ParseTask(root)
	if err != nil {
		t.Fatal(err)
	}
	if task.FlowType != fachdienst.FlowDirekteZuweisung || task.Status != fachdienst.StatusDraft {
		t.Fatalf("created %+v", task)
	}
	// The example's Binary holds a placeholder, not a CMS: parsed, then refused as a signature.
	status, body = e.post(doctorID, "/Task/"+task.ID+"/$activate", http.Header{fachdienst.HeaderAccessCode: {task.AccessCode}},
		fixture.Read(t, filepath.Join(apiExamples, "erp_steuerung_durch_le/03_request_taskActivate169.xml")))
	if status != http.StatusBadRequest || !bytes.Contains(body, []byte("CAdES-BES signature verification has failed")) {
		t.Fatalf("$activate: %d %s", status, body)
	}
}

func TestSimulatorAcceptsExampleDispensations(t *testing.T) {
	type example struct {
		name, path   string
		prescription string
		flow         int
		dispenseOnly bool
	}
	examples := []example{
		{name: "api-erp close", path: filepath.Join(apiExamples, "erp_abrufen/06_request_taskClose.xml")},
		{name: "api-erp close Rezeptur", path: filepath.Join(apiExamples, "erp_abrufen/06_request_taskClose_rezeptur.xml")},
		{name: "api-erp close with two dispensations", path: filepath.Join(apiExamples, "erp_abrufen/07_request_taskCloseMultiple.xml")},
		{name: "api-erp eML close parameters", path: filepath.Join(apiExamples, "erp_eml-epa-notes/01_Parameters-ExampleCloseInputParameters.xml")},
		{name: "api-erp eML dispense parameters", path: filepath.Join(apiExamples, "erp_eml-epa-notes/02_Parameters-ExampleDispenseInputParametersMultipleMedicationDispenses.xml"), dispenseOnly: true},
	}
	e2e, err := filepath.Glob(filepath.Join(endToEnd, "*", "*", "*_MedicationDispense.xml"))
	if err != nil || len(e2e) < 20 {
		t.Fatalf("End-to-End dispensations: %d, %v", len(e2e), err)
	}
	for _, path := range e2e {
		ex := example{name: "End-to-End " + filepath.Base(path), path: path}
		if strings.Contains(path, string(filepath.Separator)+"PKV"+string(filepath.Separator)) {
			ex.flow, ex.prescription = 200, pkvPrescription
		}
		examples = append(examples, ex)
	}
	ctx := context.Background()
	e := newEnv(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			e.t = t
			if ex.flow == 0 {
				ex.flow, ex.prescription = 160, gkvPrescription
			}
			task := e.created(ex.flow)
			task, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, e.sign(e.prescription(ex.prescription, task.ID)))
			if err != nil {
				t.Fatal(err)
			}
			acc, err := e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
			if err != nil {
				t.Fatal(err)
			}
			body := e.dispensation(ex.path, task, pharmacyID)
			if ex.dispenseOnly {
				status, answer := e.post(pharmacyID, "/Task/"+task.ID+"/$dispense?secret="+acc.Secret, nil, body)
				if status != http.StatusNoContent {
					t.Fatalf("$dispense: %d %s", status, answer)
				}
				body = nil
			}
			receipt, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, body)
			if err != nil {
				t.Fatal(err)
			}
			if receipt.PrescriptionID != task.ID || len(receipt.Signature) == 0 {
				t.Fatalf("receipt %+v", receipt)
			}
		})
	}
}
