package fachdienstsim_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/fachdienst/fachdienstsim"
	"github.com/redclone/red/ti/simpki"
)

func TestActivateRejectsBadPrescriptions(t *testing.T) {
	ctx := context.Background()
	const (
		patientKVNR = "entry/resource/Patient/identifier/value"
		pzn         = "entry/resource/Medication/code/coding/code"
		payorIK     = "entry/resource/Coverage/payor/identifier/value"
		authoredOn  = "entry/resource/MedicationRequest/authoredOn"
		category    = "entry/resource/Medication/extension/valueCoding/code"
		lanr        = "entry/resource/Practitioner/identifier/value"
	)
	otherID := func(flow int) bundleEdit {
		return func(t testing.TB, b *etree.Element) {
			id, err := ident.NewPrescriptionID(flow, 987654321)
			if err != nil {
				t.Fatal(err)
			}
			fhir.SetValue(find(t, b, "identifier/value"), id)
		}
	}
	tests := []struct {
		name   string
		flow   int
		file   string
		edits  []bundleEdit
		sign   func(e *env, content []byte) []byte
		status int
		text   string
		vau    string
	}{
		{
			name: "rejects a broken signature", flow: 160, file: gkvPrescription,
			sign: func(e *env, content []byte) []byte {
				der := e.sign(content)
				der[len(der)-3] ^= 0x55 // inside the signature value
				return der
			},
			status: http.StatusBadRequest, text: "CAdES-BES signature verification has failed", vau: "invalid_prescription",
		},
		{
			name: "rejects a bundle altered after signing", flow: 160, file: gkvPrescription,
			sign: func(e *env, content []byte) []byte {
				der := e.sign(content)
				i := strings.Index(string(der), "Sumatriptan")
				der[i] = 's'
				return der
			},
			status: http.StatusBadRequest, text: "CAdES-BES signature verification has failed", vau: "invalid_prescription",
		},
		{
			name: "rejects a signature from another PKI", flow: 160, file: gkvPrescription,
			sign: func(e *env, content []byte) []byte {
				other, err := simpki.Load(filepath.Join(e.t.TempDir(), "other-pki"))
				if err != nil {
					e.t.Fatal(err)
				}
				hba, err := other.Issue("Dr. Falsch", simpki.WithUsage(simpki.UsageQES), simpki.WithProfession("Ärztin/Arzt", simpki.ProfessionArzt))
				if err != nil {
					e.t.Fatal(err)
				}
				der, err := cms.Sign(content, hba.Certificate, hba.Key, false, e.clock.Now())
				if err != nil {
					e.t.Fatal(err)
				}
				return der
			},
			status: http.StatusBadRequest, text: "CAdES-BES signature verification has failed", vau: "invalid_prescription",
		},
		{
			name: "rejects a QES certificate without doctor profession", flow: 160, file: gkvPrescription,
			sign: func(e *env, content []byte) []byte {
				card, err := e.pki.Issue("Apotheke am Markt", simpki.WithUsage(simpki.UsageQES), simpki.WithProfession("Öffentliche Apotheke", simpki.ProfessionOeffentlicheApotheke))
				if err != nil {
					e.t.Fatal(err)
				}
				der, err := cms.Sign(content, card.Certificate, card.Key, false, e.clock.Now())
				if err != nil {
					e.t.Fatal(err)
				}
				return der
			},
			status: http.StatusBadRequest, text: "The QES-Certificate does not have expected ProfessionOID.", vau: "invalid_prescription",
		},
		{
			name: "rejects a KVNR with wrong check digit", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{setValue(patientKVNR, "X234567890")},
			status: http.StatusBadRequest, text: "Ungültige Versichertennummer (KVNR)",
		},
		{
			name: "rejects a PZN with wrong check digit", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{setValue(pzn, "06313727")},
			status: http.StatusBadRequest, text: "Ungültige PZN",
		},
		{
			name: "rejects a payor IK with wrong check digit", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{setValue(payorIK, "104212058")},
			status: http.StatusBadRequest, text: "Ungültiges Institutionskennzeichen (IKNR)",
		},
		{
			name: "rejects a coverage without payor IK", flow: 160, file: gkvPrescription,
			edits: []bundleEdit{func(t testing.TB, b *etree.Element) {
				cov := find(t, b, "entry/resource/Coverage")
				cov.RemoveChild(find(t, cov, "payor"))
			}},
			status: http.StatusBadRequest, text: "Ungültiges Institutionskennzeichen (IKNR)",
		},
		{
			name: "rejects a signing day other than authoredOn", flow: 160, file: gkvPrescription,
			edits: []bundleEdit{func(t testing.TB, b *etree.Element) {
				day := find(t, b, authoredOn)
				d, err := time.Parse(time.DateOnly, fhir.Value(day))
				if err != nil {
					t.Fatal(err)
				}
				fhir.SetValue(day, d.AddDate(0, 0, -1).Format(time.DateOnly))
			}},
			status: http.StatusBadRequest, text: "Ausstellungsdatum und Signaturzeitpunkt weichen voneinander ab, müssen aber taggleich sein",
		},
		{
			name: "rejects flow type 160 with PKV coverage", flow: 160, file: pkvPrescription,
			status: http.StatusBadRequest, text: `Coverage "PKV" not allowed for flowtype 160/162/169`,
		},
		{
			name: "rejects flow type 200 with GKV coverage", flow: 200, file: gkvPrescription,
			status: http.StatusBadRequest, text: `Coverage "PKV" not set for flowtype 200/209`,
		},
		{
			name: "rejects a bundle of another task", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{otherID(160)},
			status: http.StatusBadRequest, text: "PrescriptionId mismatch between Task and QES-Bundle",
		},
		{
			name: "rejects a bundle of another flow type", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{otherID(169)},
			status: http.StatusBadRequest, text: "Flowtype mismatch between Task and QES-Bundle",
		},
		{
			name: "rejects narcotics", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{setValue(category, "01")},
			status: http.StatusBadRequest, text: "BTM und Thalidomid nicht zulässig",
		},
		{
			name: "rejects signed content that is no bundle", flow: 160,
			sign:   func(e *env, _ []byte) []byte { return e.sign([]byte("<Patient xmlns=\"http://hl7.org/fhir\"/>")) },
			status: http.StatusBadRequest, text: "parsing / validation error",
		},
		{
			name: "rejects the placeholder of the api-erp example request", flow: 169,
			sign:   func(*env, []byte) []byte { return []byte("Dies ist ein Beispiel") },
			status: http.StatusBadRequest, text: "CAdES-BES signature verification has failed", vau: "invalid_prescription",
		},
		{
			name: "rejects a LANR with wrong check digit when configured so", flow: 160, file: gkvPrescription,
			edits:  []bundleEdit{setValue(lanr, "838382302")},
			status: http.StatusBadRequest, text: "Ungültige Arztnummer (LANR oder ZANR)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *fachdienstsim.Config) { c.RejectInvalidANR = true })
			task := e.created(tc.flow)
			var content []byte
			if tc.file != "" {
				content = e.prescription(tc.file, task.ID, tc.edits...)
			}
			signed := e.sign
			if tc.sign != nil {
				signed = func(c []byte) []byte { return tc.sign(e, c) }
			}
			_, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, signed(content))
			fe := wantError(t, err, tc.status, tc.text)
			if fe.VAUErrorCode != tc.vau {
				t.Errorf("VAU-Error-Code %q, want %q", fe.VAUErrorCode, tc.vau)
			}
			// Nothing changed: the draft can still be activated with a good prescription.
			file := gkvPrescription
			if tc.flow == 200 {
				file = pkvPrescription
			}
			if _, err := e.doctor.Activate(ctx, task.ID, task.AccessCode, e.sign(e.prescription(file, task.ID))); err != nil {
				t.Fatalf("activating the same draft afterwards: %v", err)
			}
		})
	}
}

func TestActivateWarnsAboutLANR(t *testing.T) {
	e := newEnv(t)
	task := e.created(160)
	content := e.prescription(gkvPrescription, task.ID, setValue("entry/resource/Practitioner/identifier/value", "838382302"))
	got, err := e.doctor.Activate(context.Background(), task.ID, task.AccessCode, e.sign(content))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != fachdienst.StatusReady || !strings.Contains(got.Warning, "Ungültige Arztnummer (LANR oder ZANR)") {
		t.Fatalf("status %s, warning %q", got.Status, got.Warning)
	}
}

func TestActivateSetsRedemptionPeriods(t *testing.T) {
	tests := []struct {
		name             string
		flow             int
		file             string
		accept, expiry   func(signed time.Time) time.Time
		legalBasisDischg bool
	}{
		{name: "GKV: 28 days, expiry after 3 months", flow: 160, file: gkvPrescription,
			accept: func(d time.Time) time.Time { return d.AddDate(0, 0, 28) }},
		{name: "PKV: 3 months for both", flow: 200, file: pkvPrescription,
			accept: func(d time.Time) time.Time { return threeMonths(d) }},
		{name: "Entlassrezept: 3 working days", flow: 160, file: gkvPrescription, legalBasisDischg: true,
			accept: func(d time.Time) time.Time {
				for n := 0; ; d = d.AddDate(0, 0, 1) {
					if d.Weekday() != time.Sunday {
						if n++; n == 3 {
							return d
						}
					}
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			task := e.created(tc.flow)
			var edits []bundleEdit
			if tc.legalBasisDischg {
				edits = append(edits, setValue("entry/resource/Composition/extension/valueCoding/code", "04"))
			}
			got, err := e.doctor.Activate(context.Background(), task.ID, task.AccessCode, e.sign(e.prescription(tc.file, task.ID, edits...)))
			if err != nil {
				t.Fatal(err)
			}
			day, _ := time.Parse(time.DateOnly, e.today())
			if want := tc.accept(day).Format(time.DateOnly); got.AcceptDate != want {
				t.Errorf("accept date %s, want %s", got.AcceptDate, want)
			}
			if want := threeMonths(day).Format(time.DateOnly); got.ExpiryDate != want {
				t.Errorf("expiry date %s, want %s", got.ExpiryDate, want)
			}
		})
	}
}

// threeMonths is the day three months later, the month's last day where that day is missing.
func threeMonths(d time.Time) time.Time {
	target := time.Date(d.Year(), d.Month()+3, 1, 0, 0, 0, 0, time.UTC)
	last := target.AddDate(0, 1, -1).Day()
	return time.Date(target.Year(), target.Month(), min(d.Day(), last), 0, 0, 0, 0, time.UTC)
}
