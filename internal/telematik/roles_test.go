package telematik_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
)

// RED's role rules besides the card's: each action with the roles that may call it, asked by a
// user of each role alone. A refusal is 403 forbidden naming the role needed and the user's
// roles, and nothing of the prescription; an allowed call gets past the rule (whatever the
// action then answers).
func TestRoleRules(t *testing.T) {
	red := newRed(t, konnektorsim.DefaultConfig(), 10*time.Second)
	held, practices := red.prescribe("mr-1"), red.prescribe("mr-2")
	const bundle = `<Bundle xmlns="http://hl7.org/fhir"><type value="document"/></Bundle>`
	const params = `<Parameters xmlns="http://hl7.org/fhir"/>`
	every := access.Roles()
	physician := []access.Role{access.Physician}
	pharmacist := []access.Role{access.Pharmacist}
	for _, c := range []struct {
		name, method, path, body string
		may                      []access.Role
	}{
		{"$createerptask is a physician's", "POST", "TI?action=$createerptask", bundle, physician},
		{"$processerp is a physician's", "GET", "TI?action=$processerp&card=HBA-16", "", physician},
		{"$createerp is a physician's", "POST", "Bundle?action=$createerp&card=HBA-16", bundle, physician},
		{"$signpdf is an HBA holder's", "POST", "Bundle?action=$signpdf&cardname=x", "no PDF", []access.Role{access.Physician, access.Pharmacist}},
		{"$accept is a pharmacist's", "GET", "Task?action=$accept&" + held.query(), "", pharmacist},
		{"Get Task is a pharmacist's", "GET", "Task/" + held.id, "", pharmacist},
		{"$receipt is a pharmacist's", "GET", "Task?action=$receipt&prescriptionid=" + held.id, "", pharmacist},
		{"$dispense is a pharmacist's", "POST", "Bundle?action=$dispense", params, pharmacist},
		{"$abort of a prescription the pharmacy holds is a pharmacist's", "GET", "Task?action=$abort&prescriptionid=" + held.id, "", pharmacist},
		{"$reject is a pharmacist's", "GET", "Task?action=$reject&" + held.query(), "", pharmacist},
		{"$abort of a practice's prescription is a physician's", "GET", "Task?action=$abort&prescriptionid=" + practices.id, "", physician},
		{"$egkfetch is a pharmacist's", "GET", "TI?action=$egkfetch&bundle=raw", "", pharmacist},
		{"$received is a pharmacist's", "GET", "Communication?action=$received", "", pharmacist},
		{"$reply is a pharmacist's", "POST", "Communication?action=$reply", params, pharmacist},
		{"reading data is everyone's", "GET", "Patient?page=1", "", every},
		{"entering data is everyone's", "POST", "Bundle", bundle, every},
		{"the Task polling is everyone's", "GET", "Task?from=202601010000", "", every},
		{"the cards are everyone's", "GET", "TI?action=$getcards", "", every},
		{"a PIN's status is everyone's", "GET", "TI?action=$getpinstatus&card=HBA-16", "", every},
		{"the ePA status is everyone's", "GET", "TI?action=$getepastatus&patient=K123456781", "", every},
		{"opening a patient is everyone's", "GET", "TI?action=$openpatient&id=60151", "", every},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, role := range access.Roles() {
				red.who.set(role)
				status, body := red.do(c.method, c.path, c.body)
				refused := strings.Contains(body, "needs a user with the role")
				if refused == slices.Contains(c.may, role) {
					t.Errorf("a %s: %d, refused %v\n%s", role, status, refused, body)
					continue
				}
				if !refused {
					continue
				}
				mustContain(t, "a "+string(role)+"'s refusal", body, `<code value="forbidden"/>`, "the logged-in user has: "+string(role)+`"/>`)
				if status != 403 || strings.Contains(body, held.id) || strings.Contains(body, practices.id) || strings.Contains(body, "M123456785") {
					t.Errorf("a %s: %d\n%s", role, status, body)
				}
			}
			red.who.set(access.Physician, access.Pharmacist)
		})
	}
	t.Run("a refusal names the roles needed and the user's", func(t *testing.T) {
		red.who.set(access.Assistant, access.Admin)
		_, body := red.do("GET", "Task?action=$abort&prescriptionid="+practices.id, "")
		mustContain(t, "refusal", body, "$abort needs a user with the role physician or pharmacist; the logged-in user has: assistant, admin")
		red.who.set(access.Pharmacist)
		_, body = red.do("GET", "Task?action=$abort&prescriptionid="+practices.id, "")
		mustContain(t, "refusal", body, "$abort of a prescription of the practice needs a user with the role physician; the logged-in user has: pharmacist")
	})
}

// Signing the queued prescriptions (the page's batch, red erp sign) is a physician's, and what
// no user acts for is refused.
func TestSigningNeedsAPhysician(t *testing.T) {
	red := newRed(t, konnektorsim.DefaultConfig(), 10*time.Second)
	mfa := access.Principal{Tenant: "praxis", User: "ben", Roles: []access.Role{access.Assistant}}
	for _, c := range []struct {
		name string
		do   func() error
		want string
	}{
		{"an assistant's batch", func() error {
			_, err := red.ti.SignPrescriptions(access.With(t.Context(), mfa), "HBA-16", nil, telematik.Watch{})
			return err
		}, "signing e-prescriptions needs a user with the role physician; the logged-in user has: assistant"},
		{"a batch for nobody", func() error {
			_, err := red.ti.SignPrescriptions(context.Background(), "HBA-16", nil, telematik.Watch{})
			return err
		}, "signing e-prescriptions needs a logged-in user with the role physician"},
		{"$processerp for nobody", func() error {
			_, err := red.ti.Do(context.Background(), "$processerp", url.Values{"card": {"HBA-16"}}, nil)
			return err
		}, "$processerp needs a logged-in user with the role physician"},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			is, status := fhir.Explain(c.do())
			if status != 403 || len(is) != 1 || is[0].Code != fhir.CodeForbidden || is[0].Diagnostics != c.want {
				t.Errorf("%d %+v, want 403 %q", status, is, c.want)
			}
		})
	}
}
