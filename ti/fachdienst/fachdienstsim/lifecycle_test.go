package fachdienstsim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestTaskLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// $create: a draft with a fresh PrescriptionId and AccessCode.
	task, err := e.doctor.Create(ctx, 160)
	if err != nil {
		t.Fatal(err)
	}
	if ident.PrescriptionID(task.ID) != nil || task.ID[:4] != "160." {
		t.Fatalf("PrescriptionId %q", task.ID)
	}
	if task.Status != fachdienst.StatusDraft || !hex64.MatchString(task.AccessCode) || task.PerformerType != "urn:oid:1.2.276.0.76.4.54" {
		t.Fatalf("created %+v", task)
	}

	// $activate with the QES-signed End-to-End example bundle.
	content := e.prescription(gkvPrescription, task.ID)
	signed := e.sign(content)
	task, err = e.doctor.Activate(ctx, task.ID, task.AccessCode, signed)
	if err != nil {
		t.Fatal(err)
	}
	today := e.clock.Now().In(e.berlin)
	if task.Status != fachdienst.StatusReady || task.KVNR != "X234567891" || task.Warning != "" {
		t.Fatalf("activated %+v", task)
	}
	if want := today.AddDate(0, 0, 28).Format(time.DateOnly); task.AcceptDate != want {
		t.Errorf("accept date %s, want %s", task.AcceptDate, want)
	}
	if task.ExpiryDate <= task.AcceptDate || task.Prescription == "" || task.PatientConfirmation == "" {
		t.Errorf("expiry %s, inputs %q %q", task.ExpiryDate, task.Prescription, task.PatientConfirmation)
	}

	// $accept by the first pharmacy: Secret and the signed bundle as the doctor sent it.
	first, err := e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
	if err != nil {
		t.Fatal(err)
	}
	if first.Task.Status != fachdienst.StatusInProgress || !hex64.MatchString(first.Secret) || first.Task.Owner != pharmacyID.ID {
		t.Fatalf("accepted %+v", first.Task)
	}
	if !bytes.Equal(first.Bundle, signed) {
		t.Fatal("$accept returned another prescription than was signed")
	}

	// $reject: the Task is ready again and the old Secret is worthless.
	if err := e.pharmacy.Reject(ctx, task.ID, "", first.Secret); err != nil {
		t.Fatal(err)
	}
	details, err := e.insured(task.KVNR).GetTask(ctx, task.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if details.Task.Status != fachdienst.StatusReady || details.Task.Owner != "" || details.Task.Secret != "" {
		t.Fatalf("after $reject %+v", details.Task)
	}
	if !bytes.Contains(details.PatientConfirmation, []byte("Sumatriptan")) {
		t.Error("the insured person does not see the prescription")
	}

	// $accept by the second pharmacy, then $close with the example dispensation.
	second, err := e.pharmacy2.Accept(ctx, task.ID, task.AccessCode)
	if err != nil {
		t.Fatal(err)
	}
	if second.Secret == first.Secret {
		t.Fatal("$accept reused the Secret")
	}
	err = e.pharmacy2.Reject(ctx, task.ID, "", first.Secret)
	wantError(t, err, http.StatusForbidden, "No or invalid secret")
	e.clock.Advance(20 * time.Minute)
	receipt, err := e.pharmacy2.Close(ctx, task.ID, second.Secret, e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacy2ID))
	if err != nil {
		t.Fatal(err)
	}

	// The receipt: signed by the Fachdienst, over the digest of the prescription.
	if receipt.PrescriptionID != task.ID || receipt.Beneficiary != pharmacy2ID.ID || receipt.End.Sub(receipt.Start) != 20*time.Minute {
		t.Errorf("receipt %s for %s, %v..%v", receipt.PrescriptionID, receipt.Beneficiary, receipt.Start, receipt.End)
	}
	digest := sha256.Sum256(content)
	if !bytes.Equal(receipt.Digest, digest[:]) {
		t.Error("the receipt's digest is not the SHA-256 of the signed prescription")
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.sim.Certificate())
	signedReceipt, _, err := cms.Verify(receipt.Signature, nil, roots, e.clock.Now())
	if err != nil {
		t.Fatalf("receipt signature: %v", err)
	}
	if !bytes.Contains(signedReceipt, []byte(task.ID)) || bytes.Contains(signedReceipt, []byte("<signature>")) {
		t.Errorf("the receipt signature covers %s", signedReceipt)
	}

	// The receipt stays retrievable with the Secret; the Task is completed.
	details, err = e.pharmacy2.GetTask(ctx, task.ID, "", second.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if details.Task.Status != fachdienst.StatusCompleted || details.Receipt == nil || !bytes.Equal(details.Receipt.Signature, receipt.Signature) {
		t.Fatalf("completed task %+v, receipt %v", details.Task, details.Receipt != nil)
	}
	if details.Task.Receipt == "" || details.Task.LastMedicationDispense.IsZero() {
		t.Errorf("completed task lacks output or lastMedicationDispense: %+v", details.Task)
	}

	// The insured person sees the dispensation with its medication, and the Task.
	patient := e.insured(task.KVNR)
	dispenses, err := patient.MedicationDispenses(ctx, url.Values{"identifier": {fachdienst.SystemPrescriptionID + "|" + task.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dispenses) != 1 || dispenses[0].ID != task.ID || dispenses[0].Performer != pharmacy2ID.ID || len(dispenses[0].Medication) == 0 {
		t.Fatalf("dispenses %+v", dispenses)
	}
	tasks, err := patient.ListTasks(ctx, url.Values{"status": {"completed"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].ID != task.ID {
		t.Fatalf("insured's tasks %+v", tasks)
	}

	// A completed Task cannot be accepted again.
	_, err = e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
	wantError(t, err, http.StatusConflict, "Task has invalid status completed")
}

func TestDispenseThenClose(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task, acc := e.accepted()
	_, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, nil)
	wantError(t, err, http.StatusForbidden, "Abschluss des Workflows konnte nicht durchgeführt werden.")

	dispense := e.dispensation(filepath.Join(apiExamples, "erp_eml-epa-notes/02_Parameters-ExampleDispenseInputParametersMultipleMedicationDispenses.xml"), task, pharmacyID)
	if err := e.pharmacy.Dispense(ctx, task.ID, acc.Secret, dispense); err != nil {
		t.Fatal(err)
	}
	got, err := e.pharmacy.GetTask(ctx, task.ID, "", acc.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task.Status != fachdienst.StatusInProgress || got.Task.LastMedicationDispense.IsZero() {
		t.Fatalf("after $dispense %+v", got.Task)
	}
	dispenses, err := e.insured(task.KVNR).MedicationDispenses(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dispenses) != 2 || dispenses[0].ID != task.ID || dispenses[1].ID != task.ID+"-1" {
		t.Fatalf("dispenses %+v", dispenses)
	}
	if _, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, nil); err != nil {
		t.Fatalf("$close after $dispense: %v", err)
	}
}

func TestRejectWithAccessCodeRecoversTheSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task, _ := e.accepted()
	if err := e.pharmacy.Reject(ctx, task.ID, task.AccessCode, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pharmacy2.Accept(ctx, task.ID, task.AccessCode); err != nil {
		t.Fatalf("accept after reject: %v", err)
	}
	// Secret recovery is only for the pharmacy that owns the Task.
	_, err := e.pharmacy.RecoverSecret(ctx, task.ID, task.AccessCode)
	wantError(t, err, http.StatusPreconditionFailed, "Task.owner doesn't match")
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *env) (fachdienst.Task, error)
	}{
		{"doctor aborts a ready task with the access code", func(t *testing.T, e *env) (fachdienst.Task, error) {
			task := e.ready()
			return task, e.doctor.Abort(ctx, task.ID, task.AccessCode, "")
		}},
		{"pharmacy aborts the task it accepted with the secret", func(t *testing.T, e *env) (fachdienst.Task, error) {
			task, acc := e.accepted()
			return task, e.pharmacy.Abort(ctx, task.ID, "", acc.Secret)
		}},
		{"insured person aborts their own ready task", func(t *testing.T, e *env) (fachdienst.Task, error) {
			task := e.ready()
			return task, e.insured(task.KVNR).Abort(ctx, task.ID, "", "")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			task, err := tc.run(t, e)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.pharmacy2.Accept(ctx, task.ID, task.AccessCode)
			wantError(t, err, http.StatusGone, "Task meanwhile deleted")
			err = e.doctor.Abort(ctx, task.ID, task.AccessCode, "")
			wantError(t, err, http.StatusGone, "Task has already been deleted")
			_, err = e.insured(task.KVNR).GetTask(ctx, task.ID, "", "")
			wantError(t, err, http.StatusGone, "Task has already been deleted")
			if ds, err := e.insured(task.KVNR).MedicationDispenses(ctx, nil); err != nil || len(ds) != 0 {
				t.Errorf("dispenses after abort: %v %v", ds, err)
			}
		})
	}
}

func TestInvalidTransitions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		run    func(e *env) error
		status int
		text   string
	}{
		{"activating twice gives 403", func(e *env) error {
			task := e.ready()
			_, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, e.sign(e.prescription(gkvPrescription, task.ID)))
			return err
		}, http.StatusForbidden, "Task not in status draft but in status ready"},
		{"activating with a wrong access code gives 403", func(e *env) error {
			task := e.created(160)
			_, err := e.doctor.Activate(ctx, task.ID, "00"+task.AccessCode[2:], e.sign(e.prescription(gkvPrescription, task.ID)))
			return err
		}, http.StatusForbidden, "AccessCode mismatch"},
		{"accepting a draft gives 409", func(e *env) error {
			task := e.created(160)
			_, err := e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
			return err
		}, http.StatusConflict, "Task has invalid status draft"},
		{"accepting twice by the same pharmacy gives 409", func(e *env) error {
			task, _ := e.accepted()
			_, err := e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
			if fe := wantError(e.t, err, http.StatusConflict, "Task has invalid status in-progress"); fe.Diagnostics != "Task is processed by requesting institution" {
				e.t.Errorf("diagnostics %q", fe.Diagnostics)
			}
			return err
		}, http.StatusConflict, "Task has invalid status in-progress"},
		{"accepting a task another pharmacy holds gives 409", func(e *env) error {
			task, _ := e.accepted()
			_, err := e.pharmacy2.Accept(ctx, task.ID, task.AccessCode)
			return err
		}, http.StatusConflict, "Task has invalid status in-progress"},
		{"accepting with a wrong access code gives 403", func(e *env) error {
			task := e.ready()
			_, err := e.pharmacy.Accept(ctx, task.ID, "ff"+task.AccessCode[2:])
			if fe := wantError(e.t, err, http.StatusForbidden, "AccessCode mismatch"); fe.VAUErrorCode != "brute_force" {
				e.t.Errorf("VAU-Error-Code %q", fe.VAUErrorCode)
			}
			return err
		}, http.StatusForbidden, "AccessCode mismatch"},
		{"accepting an expired task gives 403", func(e *env) error {
			task := e.ready()
			e.clock.Advance(100 * 24 * time.Hour)
			_, err := e.pharmacy.Accept(ctx, task.ID, task.AccessCode)
			return err
		}, http.StatusForbidden, "Verordnung bis "},
		{"rejecting a ready task gives 403", func(e *env) error {
			task := e.ready()
			return e.pharmacy.Reject(ctx, task.ID, "", "00")
		}, http.StatusForbidden, "Task not in status in progress, is: ready"},
		{"closing a ready task gives 403", func(e *env) error {
			task := e.ready()
			_, err := e.pharmacy.Close(ctx, task.ID, "00", e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacyID))
			return err
		}, http.StatusForbidden, "Task has to be in progress, but is: ready"},
		{"closing with a wrong secret gives 403", func(e *env) error {
			task, _ := e.accepted()
			_, err := e.pharmacy.Close(ctx, task.ID, "00", e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacyID))
			return err
		}, http.StatusForbidden, "No or invalid secret provided for Task"},
		{"closing with another pharmacy's Telematik-ID gives 400", func(e *env) error {
			task, acc := e.accepted()
			_, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacy2ID))
			return err
		}, http.StatusBadRequest, "Telematik-ID in MedicationDispense does not match"},
		{"closing a completed task gives 403", func(e *env) error {
			task, acc := e.accepted()
			body := e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacyID)
			if _, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, body); err != nil {
				return err
			}
			_, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, body)
			return err
		}, http.StatusForbidden, "Task has to be in progress, but is: completed"},
		{"aborting a draft gives 403", func(e *env) error {
			task := e.created(160)
			return e.doctor.Abort(ctx, task.ID, task.AccessCode, "")
		}, http.StatusForbidden, "Abort not expected for newly created Task"},
		{"doctor aborting a task in progress gives 403", func(e *env) error {
			task, _ := e.accepted()
			return e.doctor.Abort(ctx, task.ID, task.AccessCode, "")
		}, http.StatusForbidden, "Task must not be in progress for users other than pharmacy"},
		{"pharmacy aborting a ready task gives 403", func(e *env) error {
			task := e.ready()
			return e.pharmacy.Abort(ctx, task.ID, "", "00")
		}, http.StatusForbidden, "Task must be in progress for user pharmacy, is: ready"},
		{"doctor aborting a completed task gives 403", func(e *env) error {
			task, acc := e.accepted()
			if _, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacyID)); err != nil {
				return err
			}
			return e.doctor.Abort(ctx, task.ID, task.AccessCode, "")
		}, http.StatusForbidden, "Task must be ready for doctor, but is: completed"},
		{"pharmacy may not create tasks", func(e *env) error {
			_, err := e.pharmacy.Create(ctx, 160)
			return err
		}, http.StatusForbidden, "Access not allowed for professionOID"},
		{"doctor may not accept tasks", func(e *env) error {
			task := e.ready()
			_, err := e.doctor.Accept(ctx, task.ID, task.AccessCode)
			return err
		}, http.StatusForbidden, "Access not allowed for professionOID"},
		{"doctor may not close tasks", func(e *env) error {
			task, acc := e.accepted()
			_, err := e.doctor.Close(ctx, task.ID, acc.Secret, nil)
			return err
		}, http.StatusForbidden, "Access not allowed for professionOID"},
		{"requests without identity give 401", func(e *env) error {
			_, err := e.client(fachdienst.Identity{}).Create(ctx, 160)
			return err
		}, http.StatusUnauthorized, "Missing or invalid access token"},
		{"an unknown flow type gives 400", func(e *env) error {
			_, err := e.doctor.Create(ctx, 999)
			return err
		}, http.StatusBadRequest, "Invalid workFlowType in incoming parameters"},
		{"an unknown task gives 404", func(e *env) error {
			id, _ := ident.NewPrescriptionID(160, 123456)
			_, err := e.pharmacy.Accept(ctx, id, "00")
			return err
		}, http.StatusNotFound, "Task not found for prescription id"},
		{"a malformed task id gives 400", func(e *env) error {
			_, err := e.pharmacy.Accept(ctx, "160.000.000.000.000.01", "00")
			return err
		}, http.StatusBadRequest, "Failed to parse prescription ID"},
		{"an insured person cannot read a draft", func(e *env) error {
			task := e.created(160)
			_, err := e.insured("X234567891").GetTask(ctx, task.ID, task.AccessCode, "")
			return err
		}, http.StatusForbidden, "Status draft is not allowed for this operation"},
		{"another insured person needs the access code", func(e *env) error {
			task := e.ready()
			_, err := e.insured("X110614233").GetTask(ctx, task.ID, "", "")
			return err
		}, http.StatusForbidden, "AccessCode mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			wantError(t, tc.run(e), tc.status, tc.text)
		})
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task, acc := e.accepted()
	draft := e.created(200)
	cert := e.sim.Certificate()

	e.restart()

	got, err := e.pharmacy.GetTask(ctx, task.ID, "", acc.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task.Status != fachdienst.StatusInProgress || got.Task.Owner != pharmacyID.ID || got.Task.KVNR != task.KVNR {
		t.Fatalf("after restart %+v", got.Task)
	}
	next := e.created(160)
	if next.ID == task.ID || next.ID[4:] <= draft.ID[4:] {
		t.Errorf("running number restarted: %s after %s and %s", next.ID, task.ID, draft.ID)
	}
	receipt, err := e.pharmacy.Close(ctx, task.ID, acc.Secret, e.dispensation(filepath.Join(endToEnd, gkvDispense), task, pharmacyID))
	if err != nil {
		t.Fatal(err)
	}
	if !e.sim.Certificate().Equal(cert) {
		t.Error("the receipt signing certificate changed with the restart")
	}
	e.restart()
	details, err := e.pharmacy.GetTask(ctx, task.ID, "", acc.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if details.Receipt == nil || !bytes.Equal(details.Receipt.XML, receipt.XML) {
		t.Error("the receipt did not survive the restart")
	}
	if _, err := e.doctor.Activate(ctx, draft.ID, draft.AccessCode, e.sign(e.prescription(pkvPrescription, draft.ID))); err != nil {
		t.Errorf("activating a draft created before the restart: %v", err)
	}
}

func TestCommunications(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()
	patient := e.insured(task.KVNR)

	// The insured person assigns the prescription to a pharmacy (DispReq).
	dispReq := load(t, filepath.Join(apiExamples, "erp_communication/08_response_GetAllMessages.xml")).FindElement("entry/resource/Communication")
	fhir.SetValue(find(t, dispReq, "basedOn/reference"), "Task/"+task.ID+"/$accept?ac="+task.AccessCode)
	fhir.SetValue(find(t, dispReq, "recipient/identifier/value"), pharmacyID.ID)
	sent, err := patient.SendCommunication(ctx, fhir.Marshal(dispReq))
	if err != nil {
		t.Fatal(err)
	}
	if sent.Sender != task.KVNR || sent.TaskID != task.ID || sent.Sent.IsZero() {
		t.Fatalf("sent %+v", sent)
	}

	// The pharmacy fetches its unread messages once.
	unread := url.Values{"received": {"NULL"}}
	got, err := e.pharmacy.Communications(ctx, unread)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != sent.ID || got[0].Received.IsZero() {
		t.Fatalf("pharmacy's messages %+v", got)
	}
	if again, err := e.pharmacy.Communications(ctx, unread); err != nil || len(again) != 0 {
		t.Fatalf("unread after reading: %v %v", again, err)
	}

	// The pharmacy replies with the api-erp example request.
	reply := load(t, filepath.Join(apiExamples, "erp_communication/03_request_PostPharmacyToPatient.xml"))
	fhir.SetValue(find(t, reply, "basedOn/reference"), "Task/"+task.ID)
	fhir.SetValue(find(t, reply, "recipient/identifier/value"), task.KVNR)
	if _, err := e.pharmacy.SendCommunication(ctx, fhir.Marshal(reply)); err != nil {
		t.Fatal(err)
	}
	mine, err := patient.Communications(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 2 {
		t.Fatalf("insured's messages %+v", mine)
	}

	// $abort deletes the messages of the Task.
	if err := e.doctor.Abort(ctx, task.ID, task.AccessCode, ""); err != nil {
		t.Fatal(err)
	}
	if left, err := patient.Communications(ctx, nil); err != nil || len(left) != 0 {
		t.Fatalf("messages after abort: %v %v", left, err)
	}
	_, err = patient.SendCommunication(ctx, fhir.Marshal(dispReq))
	wantError(t, err, http.StatusBadRequest, "Task has invalid status.")
}

func TestPharmacyListsTasksByKVNR(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ready := e.ready()
	accepted, _ := e.accepted() // same patient, but in progress: not listed
	e.created(160)              // drafts have no patient yet

	tasks, err := e.pharmacy2.ListTasks(ctx, url.Values{"kvnr": {ready.KVNR}, "pnw": {"H4sIAAAAAAAA"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].ID != ready.ID || tasks[0].AccessCode != ready.AccessCode {
		t.Fatalf("tasks %+v (accepted was %s)", tasks, accepted.ID)
	}
	_, err = e.pharmacy2.ListTasks(ctx, url.Values{"pnw": {"H4sIAAAAAAAA"}})
	wantError(t, err, 455, "Ein Prüfnachweis ohne KVNR wird nicht akzeptiert.")
	_, err = e.pharmacy2.ListTasks(ctx, url.Values{"kvnr": {ready.KVNR}})
	wantError(t, err, http.StatusForbidden, "Missing or invalid PNW query parameter")

	// The insured person sees both, newest first on request.
	mine, err := e.insured(ready.KVNR).ListTasks(ctx, url.Values{"_sort": {"-authored-on"}, "status": {"ready"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].ID != ready.ID {
		t.Fatalf("insured's ready tasks %+v", mine)
	}
	_, err = e.doctor.ListTasks(ctx, nil)
	wantError(t, err, http.StatusForbidden, "Access not allowed for professionOID")
}

func TestRequestLimits(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		status int
	}{
		{"refuses bodies over 1 MB", nil, bytes.Repeat([]byte("<a/>"), 300_000), http.StatusRequestEntityTooLarge},
		{"refuses JSON", http.Header{"Content-Type": {"application/fhir+json"}}, []byte(`{"resourceType":"Parameters"}`), http.StatusUnsupportedMediaType},
		{"refuses DOCTYPE declarations", nil, []byte(`<!DOCTYPE x [<!ENTITY a "b">]><Parameters xmlns="http://hl7.org/fhir"/>`), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/Task/$create", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			doctorID.Set(req.Header)
			req.Header.Set("Content-Type", fachdienst.ContentType)
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
		})
	}
	res, err := e.srv.Client().Get(e.srv.URL + "/Task/$create")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without identity: %d", res.StatusCode)
	}
}

func TestNewIgnoresInterruptedWrites(t *testing.T) {
	e := newEnv(t)
	task := e.ready()
	// A crash between creating the temporary file and renaming it leaves such a file behind.
	if err := os.WriteFile(filepath.Join(e.state, "tasks", ".tmp-"+task.ID+".json.123"), []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if _, err := e.insured(task.KVNR).GetTask(context.Background(), task.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.state, "tasks", "broken.json"), []byte("{trunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fachdienstsim.New(e.cfg); err == nil {
		t.Error("New accepted a corrupt state file")
	}
}

func TestInjectedRandomnessAndConcurrency(t *testing.T) {
	seeded := func(c *fachdienstsim.Config) { c.Rand = mathrand.NewChaCha8([32]byte{1, 2, 3}) }
	a, b := newEnv(t, seeded), newEnv(t, seeded)
	ta, tb := a.created(160), b.created(160)
	if ta.ID != tb.ID || ta.AccessCode != tb.AccessCode {
		t.Errorf("the same seed gave %s/%s and %s/%s", ta.ID, ta.AccessCode, tb.ID, tb.AccessCode)
	}

	const n = 16
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for range n {
		wg.Go(func() {
			task, err := a.doctor.Create(context.Background(), 160)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := a.insured("X110614233").ListTasks(context.Background(), nil); err != nil {
				t.Error(err)
			}
			ids <- task.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{ta.ID: true}
	for id := range ids {
		if seen[id] {
			t.Errorf("PrescriptionId %s issued twice", id)
		}
		seen[id] = true
	}
}
