package fachdienst_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redclone/red/ti/fachdienst"
)

func TestParseReplyPayload(t *testing.T) {
	for _, c := range []struct {
		name, json  string
		kind, field string // "" when accepted
	}{
		{"accepts gemSpec's example", `{"version":1,"supplyOptionsType":"onPremise","info_text":"Hallo","url":"https://gematik.de","pickUpCodeHR":"12345678","pickUpCodeDMC":"123459789"}`, "", ""},
		{"accepts a delivery without codes", `{"version":1,"supplyOptionsType":"delivery","info_text":"Hallo der Herr"}`, "", ""},
		{"refuses text", `Hallo`, fachdienst.PayloadSyntax, ""},
		{"refuses a JSON array", `[1]`, fachdienst.PayloadSyntax, ""},
		{"refuses null", `null`, fachdienst.PayloadSyntax, ""},
		{"refuses a missing version", `{"supplyOptionsType":"onPremise"}`, fachdienst.PayloadSchema, "version"},
		{"refuses version as string", `{"version":"1","supplyOptionsType":"onPremise"}`, fachdienst.PayloadSchema, "version"},
		{"refuses version 2", `{"version":2,"supplyOptionsType":"onPremise"}`, fachdienst.PayloadSchema, "version"},
		{"refuses a missing supply option", `{"version":1}`, fachdienst.PayloadSchema, "supplyOptionsType"},
		{"refuses info_text as number", `{"version":1,"supplyOptionsType":"onPremise","info_text":5}`, fachdienst.PayloadSchema, "info_text"},
		{"refuses extra fields", `{"version":1,"supplyOptionsType":"onPremise","geheim":"x"}`, fachdienst.PayloadSchema, ""},
		{"counts characters, not bytes", `{"version":1,"supplyOptionsType":"onPremise","pickUpCodeHR":"ääääää"}`, "", ""},
		{"refuses a long pickUpCodeDMC", `{"version":1,"supplyOptionsType":"onPremise","pickUpCodeDMC":"` + strings.Repeat("x", 129) + `"}`, fachdienst.PayloadSchema, "pickUpCodeDMC"},
		{"refuses a long url", `{"version":1,"supplyOptionsType":"onPremise","url":"https://gematik.de/` + strings.Repeat("x", 500) + `"}`, fachdienst.PayloadSchema, "url"},
		{"refuses a pick-up code for delivery", `{"version":1,"supplyOptionsType":"delivery","pickUpCodeHR":"1234"}`, fachdienst.PayloadOnPremise, "pickUpCodeHR"},
		{"refuses a url without scheme", `{"version":1,"supplyOptionsType":"onPremise","url":"gematik.de"}`, fachdienst.PayloadURL, "url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := fachdienst.ParseReplyPayload(c.json)
			if c.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				if again, err := fachdienst.ParseReplyPayload(p.JSON()); err != nil || again != p {
					t.Errorf("round trip: %+v %v", again, err)
				}
				return
			}
			var pp *fachdienst.PayloadProblem
			if !errors.As(err, &pp) || pp.Kind != c.kind || pp.Field != c.field {
				t.Fatalf("got %#v, want %q at %q", err, c.kind, c.field)
			}
			if strings.Contains(err.Error(), "geheim") || strings.Contains(err.Error(), "Hallo") {
				t.Errorf("the message quotes the payload: %v", err)
			}
		})
	}
}

func TestReplyPayloadJSONKeepsText(t *testing.T) {
	p := fachdienst.ReplyPayload{Version: 1, SupplyOptionsType: fachdienst.SupplyOnPremise, InfoText: "Bitte <morgen> & übermorgen"}
	if got, want := p.JSON(), `{"version":1,"supplyOptionsType":"onPremise","info_text":"Bitte <morgen> & übermorgen"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
