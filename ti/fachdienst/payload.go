package fachdienst

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// ProfileCommunicationReply is the profile of a pharmacy's message to an insured person.
const ProfileCommunicationReply = profileBase + "GEM_ERP_PR_Communication_Reply|" + ProfileVersion

// Supply options of a pharmacy's reply (supplyOptionsType in the payload).
const (
	SupplyOnPremise = "onPremise" // collected at the pharmacy
	SupplyShipment  = "shipment"  // sent by parcel
	SupplyDelivery  = "delivery"  // brought by the pharmacy's messenger
)

// Limits of the reply payload fields (gemSpec_DM_eRp, "Nachricht als Apotheke an einen
// Versicherten schicken"), in characters.
const (
	MaxInfoText      = 500
	MaxURL           = 500
	MaxPickUpCodeHR  = 8
	MaxPickUpCodeDMC = 128
)

// ReplyPayload is the JSON a GEM_ERP_PR_Communication_Reply carries in payload.contentString
// (version 1): what a pharmacy tells the insured person.
type ReplyPayload struct {
	Version           int    `json:"version"`
	SupplyOptionsType string `json:"supplyOptionsType"`
	InfoText          string `json:"info_text,omitempty"`
	URL               string `json:"url,omitempty"`
	PickUpCodeHR      string `json:"pickUpCodeHR,omitempty"`
	PickUpCodeDMC     string `json:"pickUpCodeDMC,omitempty"`
}

// PayloadProblem says why a reply payload is refused. Kind is the class of the Fachdienst's
// message ([PayloadSyntax], [PayloadSchema], [PayloadOnPremise], [PayloadURL]); Field names the
// JSON field ("" for the whole payload). Its text never quotes the payload's values.
type PayloadProblem struct {
	Kind   string
	Field  string
	Reason string
}

// Kinds of PayloadProblem, after the E-Rezept-Fachdienst's messages.
const (
	PayloadSyntax    = "Invalid JSON in payload.contentString"
	PayloadSchema    = "Invalid payload: does not conform to expected JSON schema:"
	PayloadOnPremise = "Invalid payload: Value of 'supplyOptionsType' must be 'onPremise'"
	PayloadURL       = "Invalid payload: URL not valid."
)

func (p *PayloadProblem) Error() string {
	if p.Field == "" {
		return p.Reason
	}
	return p.Field + ": " + p.Reason
}

// replyFields are the fields version 1 of the reply payload defines; no others are allowed.
var replyFields = []string{"version", "supplyOptionsType", "info_text", "url", "pickUpCodeHR", "pickUpCodeDMC"}

// ParseReplyPayload reads and checks a reply payload (see [ReplyPayload.Check]).
func ParseReplyPayload(s string) (ReplyPayload, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil || fields == nil {
		return ReplyPayload{}, &PayloadProblem{Kind: PayloadSyntax, Reason: "is not a JSON object"}
	}
	var problems []string
	for name := range fields {
		if !slices.Contains(replyFields, name) {
			problems = append(problems, name)
		}
	}
	if len(problems) > 0 {
		return ReplyPayload{}, &PayloadProblem{Kind: PayloadSchema,
			Reason: fmt.Sprintf("has %d field(s) a reply does not define; allowed are %s", len(problems), strings.Join(replyFields, ", "))}
	}
	if _, ok := fields["version"]; !ok {
		return ReplyPayload{}, &PayloadProblem{Kind: PayloadSchema, Field: "version", Reason: "is required (1)"}
	}
	var p ReplyPayload
	for _, name := range replyFields {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		var target any
		switch name {
		case "version":
			target = &p.Version
		case "supplyOptionsType":
			target = &p.SupplyOptionsType
		case "info_text":
			target = &p.InfoText
		case "url":
			target = &p.URL
		case "pickUpCodeHR":
			target = &p.PickUpCodeHR
		case "pickUpCodeDMC":
			target = &p.PickUpCodeDMC
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		if err := d.Decode(target); err != nil {
			want := "a string"
			if name == "version" {
				want = "a number"
			}
			return ReplyPayload{}, &PayloadProblem{Kind: PayloadSchema, Field: name, Reason: "is not " + want}
		}
	}
	return p, p.Check()
}

// Check applies the rules of version 1: version 1, supplyOptionsType one of onPremise, shipment
// and delivery, the fields' lengths, pick-up codes only for onPremise, url an absolute URL.
func (p ReplyPayload) Check() error {
	if p.Version != 1 {
		return &PayloadProblem{Kind: PayloadSchema, Field: "version", Reason: "must be 1"}
	}
	switch p.SupplyOptionsType {
	case SupplyOnPremise, SupplyShipment, SupplyDelivery:
	case "":
		return &PayloadProblem{Kind: PayloadSchema, Field: "supplyOptionsType", Reason: "is required (onPremise, shipment or delivery)"}
	default:
		return &PayloadProblem{Kind: PayloadSchema, Field: "supplyOptionsType", Reason: "must be onPremise, shipment or delivery"}
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{{"info_text", p.InfoText, MaxInfoText}, {"url", p.URL, MaxURL}, {"pickUpCodeHR", p.PickUpCodeHR, MaxPickUpCodeHR}, {"pickUpCodeDMC", p.PickUpCodeDMC, MaxPickUpCodeDMC}} {
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return &PayloadProblem{Kind: PayloadSchema, Field: f.name, Reason: fmt.Sprintf("has %d characters, at most %d are allowed", n, f.max)}
		}
	}
	if (p.PickUpCodeHR != "" || p.PickUpCodeDMC != "") && p.SupplyOptionsType != SupplyOnPremise {
		field := "pickUpCodeHR"
		if p.PickUpCodeHR == "" {
			field = "pickUpCodeDMC"
		}
		return &PayloadProblem{Kind: PayloadOnPremise, Field: field, Reason: "a pick-up code goes only with supplyOptionsType onPremise"}
	}
	if p.URL != "" {
		if u, err := url.Parse(p.URL); err != nil || u.Scheme == "" || u.Host == "" {
			return &PayloadProblem{Kind: PayloadURL, Field: "url", Reason: "is not an absolute URL (RFC 3986)"}
		}
	}
	return nil
}

// JSON is the payload as contentString.
func (p ReplyPayload) JSON() string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(p) // strings and an int always encode
	return strings.TrimSuffix(b.String(), "\n")
}
