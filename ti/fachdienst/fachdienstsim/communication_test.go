package fachdienstsim_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/fachdienst"
)

// dispReq is api-erp's DispReq example for task, addressed to the pharmacy pharmacyID.
func dispReq(t testing.TB, task fachdienst.Task) []byte {
	t.Helper()
	c := load(t, filepath.Join(apiExamples, "erp_communication/08_response_GetAllMessages.xml")).FindElement("entry/resource/Communication")
	fhir.SetValue(find(t, c, "basedOn/reference"), "Task/"+task.ID+"/$accept?ac="+task.AccessCode)
	fhir.SetValue(find(t, c, "recipient/identifier/value"), pharmacyID.ID)
	return fhir.Marshal(c)
}

// The pharmacy's unread messages come newest first with _sort=-sent, in each spelling of
// received=NULL (gemSpec's null, the reference's NULL, RED's eqNULL), and only once.
func TestUnreadMessagesNewestFirst(t *testing.T) {
	for _, null := range []string{"NULL", "null", "eqNULL"} {
		t.Run("received="+null, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var sent []fachdienst.Communication
			for range 3 {
				task := e.ready()
				c, err := e.insured(task.KVNR).SendCommunication(ctx, dispReq(t, task))
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, c)
				e.clock.Advance(time.Minute)
			}
			q := url.Values{"received": {null}, "_sort": {"-sent"}, "recipient": {pharmacyID.ID}}
			got, err := e.pharmacy.Communications(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[0].ID != sent[2].ID || got[1].ID != sent[1].ID || got[2].ID != sent[0].ID {
				t.Fatalf("not newest first: %+v", got)
			}
			for _, c := range got {
				if c.Received.IsZero() {
					t.Errorf("%s has no received time after the fetch", c.ID)
				}
			}
			if again, err := e.pharmacy.Communications(ctx, q); err != nil || len(again) != 0 {
				t.Fatalf("unread after reading: %+v %v", again, err)
			}
		})
	}
}

// A reply goes to an insured person (KVNR) and carries the payload of gemSpec_DM_eRp; the
// Fachdienst refuses others with the reference implementation's messages.
func TestReplyRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	task := e.ready()
	reply := func(edit func(c *etree.Element)) []byte {
		c := load(t, filepath.Join(apiExamples, "erp_communication/03_request_PostPharmacyToPatient.xml"))
		fhir.SetValue(find(t, c, "basedOn/reference"), "Task/"+task.ID)
		fhir.SetValue(find(t, c, "recipient/identifier/value"), task.KVNR)
		if edit != nil {
			edit(c)
		}
		return fhir.Marshal(c)
	}
	payload := func(json string) func(c *etree.Element) {
		return func(c *etree.Element) { fhir.SetValue(c.FindElement("payload/contentString"), json) }
	}
	for _, c := range []struct {
		name string
		edit func(c *etree.Element)
		text string // "" for accepted
	}{
		{"accepts the api-erp example", nil, ""},
		{"accepts the smallest payload", payload(`{"version":1,"supplyOptionsType":"delivery"}`), ""},
		{"accepts 500 characters of info_text", payload(`{"version":1,"supplyOptionsType":"onPremise","info_text":"` + strings.Repeat("ä", 500) + `"}`), ""},
		{"refuses a reply to a pharmacy", func(c *etree.Element) {
			fhir.SetValue(c.FindElement("recipient/identifier/system"), fachdienst.SystemTelematikID)
			fhir.SetValue(c.FindElement("recipient/identifier/value"), pharmacy2ID.ID)
		}, "parsing / validation error"},
		{"refuses a reply without payload", func(c *etree.Element) { c.RemoveChild(c.SelectElement("payload")) }, "parsing / validation error"},
		{"refuses a payload that is no JSON", payload("Ihr Medikament ist da"), fachdienst.PayloadSyntax},
		{"refuses version 2", payload(`{"version":2,"supplyOptionsType":"onPremise"}`), fachdienst.PayloadSchema},
		{"refuses an empty object", payload(`{}`), fachdienst.PayloadSchema},
		{"refuses unknown fields", payload(`{"version":1,"supplyOptionsType":"onPremise","extraElement":"1"}`), fachdienst.PayloadSchema},
		{"refuses an unknown supply option", payload(`{"version":1,"supplyOptionsType":"drone"}`), fachdienst.PayloadSchema},
		{"refuses 501 characters of info_text", payload(`{"version":1,"supplyOptionsType":"onPremise","info_text":"` + strings.Repeat("a", 501) + `"}`), fachdienst.PayloadSchema},
		{"refuses a nine-character pickUpCodeHR", payload(`{"version":1,"supplyOptionsType":"onPremise","pickUpCodeHR":"123456789"}`), fachdienst.PayloadSchema},
		{"refuses a pick-up code for shipment", payload(`{"version":1,"supplyOptionsType":"shipment","pickUpCodeDMC":"abcd"}`), fachdienst.PayloadOnPremise},
		{"refuses a relative url", payload(`{"version":1,"supplyOptionsType":"onPremise","url":"something"}`), fachdienst.PayloadURL},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.pharmacy.SendCommunication(ctx, reply(c.edit))
			if c.text == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fe := wantError(t, err, http.StatusBadRequest, c.text)
			if strings.Contains(fe.Diagnostics, "Ihr Medikament") {
				t.Errorf("the diagnostics quote the message: %s", fe.Diagnostics)
			}
		})
	}
}
