package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// vosBundle is a VOS Speicherbundle (KBV_PR_VoS_Bundle_VoS_PVS) of package vos's testdata, made
// from gematik's example prescription (Apache-2.0) for the holder of the eGK in the simulated
// terminal, with its ids replaced (old, new pairs).
func vosBundle(t testing.TB, name string, replace ...string) []byte {
	t.Helper()
	raw := string(readFile(t, filepath.Join("..", "..", "fhir", "kbv", "vos", "testdata", name+".in.xml")))
	return []byte(strings.NewReplacer(replace...).Replace(raw))
}

// RED's legacy prescription format end to end over HTTP, against the simulators: a VOS PZN
// prescription (RED's Postman 0230) is queued with $createerptask and signed by $processerp,
// another is signed at once with $createerp (0231), one carrying an unsigned e-prescription
// bundle is queued and signed, each ending as an activated Task at the Fachdienst; a VOS bundle
// lacking what the e-prescription needs is refused with locations in the posted bundle, and
// nothing of it is stored.
func TestVOSPrescriptions(t *testing.T) {
	srv, _ := tiServer(t)
	status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", fhirXML, vosBundle(t, "pzn"))
	if status != 201 {
		t.Fatalf("queue the VOS prescription: %d\n%s", status, body)
	}
	mustContain(t, "$createerptask (VOS)", body, "MedicationRequest/vos-pzn-1", "Bundle.entry[1].resource.extension[0]", "KBV_EX_VoS_PrescriptionType")
	// its persons are stored like posted data, under their posted ids, in the FOR profiles
	if status, body := srv.do(t, "GET", "/praxis/Patient/9774f67f-a238-4daf-b4e6-679deeef3811", "", nil); status != 200 || !strings.Contains(body, "KBV_PR_FOR_Patient") {
		t.Errorf("the VOS prescription's patient: %d\n%s", status, body)
	}
	status, body = srv.do(t, "POST", "/praxis/TI?action=$createerptask", fhirXML, vosBundle(t, "carried"))
	if status != 201 || !strings.Contains(body, "MedicationRequest/vos-erp-1") {
		t.Fatalf("queue the VOS bundle carrying an unsigned e-prescription: %d\n%s", status, body)
	}
	status, body = srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil)
	if status != 200 || strings.Count(body, "<url>") != 2 || strings.Contains(body, "<reason>") {
		t.Fatalf("$processerp: %d\n%s", status, body)
	}
	mustContain(t, "$processerp", body, "<id>vos-pzn-1</id>", "<id>vos-erp-1</id>", "Task/160.")

	// $createerp signs and sends a VOS prescription at once
	status, body = srv.do(t, "POST", "/praxis/Bundle?action=$createerp&cardname=Dr.%20med.%20Hanna%20Berger%20TEST-ONLY&smbiccsn=80276883110000177002", fhirXML,
		vosBundle(t, "pzn", "vos-pzn-1", "vos-pzn-3"))
	if status != 200 {
		t.Fatalf("$createerp (VOS): %d\n%s", status, body)
	}
	mustContain(t, "$createerp (VOS)", body, "<id>vos-pzn-3</id>", "<taskid>160.", "<accesscode>")
	if _, body := srv.do(t, "GET", "/praxis/Task", "", nil); !strings.Contains(body, `<total value="3"/>`) || !strings.Contains(body, "MedicationRequest/vos-pzn-3") {
		t.Errorf("the Task polling after the VOS prescriptions:\n%s", body)
	}

	// what the e-prescription needs and the VOS bundle lacks: refused, located in the VOS bundle
	unstored := vosBundle(t, "missing", "vos-pzn-1", "vos-missing", "9774f67f-a238-4daf-b4e6-679deeef3811", "vos-unstored-patient")
	for _, action := range []string{"/praxis/TI?action=$createerptask", "/praxis/Bundle?action=$createerp&card=HBA-16&smbiccsn=80276883110000177002"} {
		status, body := srv.do(t, "POST", action, fhirXML, unstored)
		if status != 400 {
			t.Fatalf("%s with a VOS bundle lacking data: %d, want 400\n%s", action, status, body)
		}
		mustContain(t, action, body, "Bundle.entry[3].resource.birthDate", "-erp-angabePruefnummerPflicht", "Bundle.entry[2].resource.code.coding[0].code")
	}
	if status, body := srv.do(t, "GET", "/praxis/Patient/vos-unstored-patient", "", nil); status != 404 {
		t.Errorf("a refused VOS bundle's patient was stored: %d\n%s", status, body)
	}
	if _, body := srv.do(t, "GET", "/praxis/TI?action=$processerp&card=HBA-16", "", nil); strings.Contains(body, "vos-missing") {
		t.Errorf("a refused VOS prescription was queued:\n%s", body)
	}
	// one prescription per request
	if status, body := srv.do(t, "POST", "/praxis/TI?action=$createerptask", fhirXML, vosBundle(t, "two")); status != 400 || !strings.Contains(body, "one prescription per request") {
		t.Errorf("a VOS bundle with two prescriptions: %d\n%s", status, body)
	}
}
