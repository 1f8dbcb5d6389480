package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/redclone/red/ti/konnektor"
)

// The demo tenant is a small practice, and every KVNR red demo shows is one the simulators know.
func TestDemoPractice(t *testing.T) {
	in := newInstance(t, "")
	srv := in.serve("demo")
	out := srv.output.String()

	t.Run("resources", func(t *testing.T) {
		for _, c := range []struct {
			search string
			total  string
			want   []string
		}{
			{"Patient?page=1", "8", []string{"/Patient/60151", "/Patient/60158"}},
			{"Practitioner?page=1", "3", []string{`<value value="123456601"/>`, "KBV_NS_Base_ANR"}},
			{"PractitionerRole?organization=Organization/O60100", "3", nil},
			{"Organization?identifier=https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR|031234567", "1", []string{"Praxis Dr. Hanna Berger"}},
			{"Coverage?beneficiary=Patient/60153", "1", []string{`<code value="GKV"/>`, `<value value="109999994"/>`}},
			{"Coverage?beneficiary=Patient/60158", "1", []string{`<code value="PKV"/>`}},
			{"Coverage?beneficiary=Patient/60155", "1", []string{"HauptversichertenID", `<code value="3"/>`}},
			{"Encounter?subject=Patient/60156", "2", nil},
			{"Encounter?subject=Patient/60153&from=20260301&to=20260331", "2", nil},
			{"Condition?subject=Patient/60156", "2", []string{"http://fhir.de/CodeSystem/bfarm/icd-10-gm", `<code value="I10.90"/>`, `<code value="E11.90"/>`}},
			{"Condition?code=J06.9", "1", []string{"/Condition/C6015301"}},
			{"Observation?subject=Patient/60156", "3", []string{"KBV_PR_AW_Observation_Blutdruck", `<code value="4548-4"/>`}},
			{"Observation?subject=Patient/60153", "2", []string{"KBV_PR_AW_Observation_Koerpertemperatur"}},
			{"DocumentReference?subject=Patient/60156", "1", []string{`<contentType value="application/pdf"/>`, `<data value="JVBERi0`}},
		} {
			t.Run(c.search, func(t *testing.T) {
				status, body := srv.do(t, "GET", "/demo/"+c.search, "", nil)
				if status != 200 {
					t.Fatalf("%d\n%s", status, body)
				}
				mustContain(t, c.search, body, append([]string{`<total value="` + c.total + `"/>`}, c.want...)...)
			})
		}
	})

	t.Run("the practice passes red's checks without a warning", func(t *testing.T) {
		other := newInstance(t, "")
		other.initTenant("praxis", "anna", "pw")
		srv := other.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", other.passwordFile("pw"))
		status, body := srv.do(t, "POST", "/praxis/Bundle", fhirXML, readFile(t, "demo-bundle.xml"))
		if status != 200 || strings.Contains(body, "<issue>") {
			t.Errorf("%d\n%s", status, body)
		}
	})

	// the lines "red:   KVNR  facts — Patient/id Given Family"
	shown := regexp.MustCompile(`(?m)^red:   ([A-Z]\d{9})  (.*?)(?: — Patient/(\S+) (.*))?$`).FindAllStringSubmatch(out, -1)
	if len(shown) < 4 {
		t.Fatalf("red demo shows %d KVNRs:\n%s", len(shown), out)
	}
	k := regexp.MustCompile(`Konnektor simulator at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if k == nil {
		t.Fatalf("no Konnektor simulator:\n%s", out)
	}
	konn := &konnektor.Client{BaseURL: k[1], Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "red", WorkplaceID: "AP1", UserID: "demo"}}
	withPatient := map[string]bool{} // per kind of KVNR: one of them is a demo patient
	for _, m := range shown {
		kvnr, facts, patient, name := m[1], m[2], m[3], m[4]
		t.Run(kvnr, func(t *testing.T) {
			if patient != "" {
				status, body := srv.do(t, "GET", "/demo/Patient?identifier="+kvnr, "", nil)
				if status != 200 {
					t.Fatal(status, body)
				}
				given, family, _ := strings.Cut(name, " ")
				mustContain(t, "the demo patient of "+kvnr, body, `<total value="1"/>`, "/Patient/"+patient, `<given value="`+given+`"/>`, `<family value="`+family+`"`)
			}
			if card := regexp.MustCompile(`eGK (\S+) in card terminal`).FindStringSubmatch(facts); card != nil {
				withPatient["eGK"] = withPatient["eGK"] || patient != ""
				vsd, err := konn.ReadVSD(context.Background(), card[1], "SMC-B-15", false, false)
				if err != nil {
					t.Fatal(err)
				}
				if vsd.Personal.KVNR != kvnr || (name != "" && name != vsd.Personal.GivenName+" "+vsd.Personal.FamilyName) {
					t.Errorf("the eGK %s holds %s %s %s", card[1], vsd.Personal.KVNR, vsd.Personal.GivenName, vsd.Personal.FamilyName)
				}
				if status, body := srv.do(t, "GET", "/demo/TI?action=$egkfetch&bundle=raw", "", nil); status != 200 {
					t.Errorf("egkfetch: %d\n%s", status, body)
				}
			}
			status, body := srv.do(t, "GET", "/demo/TI?action=$getepastatus&patient="+kvnr, "", nil)
			if status != 201 {
				t.Fatalf("getepastatus: %d\n%s", status, body)
			}
			switch {
			case strings.Contains(facts, "ePA, this practice is entitled"):
				withPatient["entitled"] = withPatient["entitled"] || patient != ""
				mustContain(t, "ePA status", body, "<authorizationState>")
				if strings.Contains(body, "ERROR") {
					t.Errorf("the practice is not entitled after all:\n%s", body)
				}
			case strings.Contains(facts, "ePA, this practice is not entitled"):
				withPatient["not entitled"] = withPatient["not entitled"] || patient != ""
				mustContain(t, "ePA status", body, "not authorised")
			case strings.Contains(facts, "no ePA"):
				withPatient["no ePA"] = withPatient["no ePA"] || patient != ""
				mustContain(t, "ePA status", body, "<status>ERROR</status>", "no ePA")
			}
		})
	}
	for _, kind := range []string{"eGK", "entitled", "not entitled", "no ePA"} {
		if !withPatient[kind] {
			t.Errorf("red demo shows no demo patient with a KVNR of kind %q:\n%s", kind, out)
		}
	}
}
