package konnektor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
	"github.com/google/uuid"
)

// signatureNS returns the SignatureService namespace for a directory version.
func signatureNS(v ServiceVersion) string {
	if v.majorMinor() == "7.4" {
		return NSSignatureService74
	}
	return NSSignatureService75
}

// maxShortText is the limit of Document@ShortText.
const maxShortText = 30

// SignDocuments signs all docs in one SignDocument call: with an HBA this is a batch
// (Stapelsignatur) of qualified signatures for one PIN.QES entry (or within an active
// Komfortsignatur of Context.UserID); with an SMC-B they are organisational signatures.
// Signatures are CAdES (urn:ietf:rfc:5652), enveloping unless Document.Detached. The result
// has one Signature per document, in order; a document the Konnektor refused has an ERROR
// Status and no Value.
func (c *Client) SignDocuments(ctx context.Context, cardHandle string, docs []Document) ([]Signature, error) {
	if len(docs) == 0 {
		return nil, errors.New("konnektor: SignDocument: no documents")
	}
	ep, v, err := c.endpoint(ctx, ServiceSignature, "7.5", "7.4")
	if err != nil {
		return nil, err
	}
	ns := signatureNS(v)
	r := newRequest(ns, "SignDocument")
	add(r.op, "CONN:CardHandle", cardHandle)
	c.addContext(r.op)
	add(r.op, "m:TvMode", "NONE")
	ids := make([]string, len(docs))
	for i, d := range docs {
		if utf8.RuneCountInString(d.ShortText) > maxShortText {
			return nil, fmt.Errorf("konnektor: SignDocument: document %d: ShortText longer than %d characters", i+1, maxShortText)
		}
		id := d.RequestID
		if id == "" {
			id = uuid.NewString()
		}
		ids[i] = id
		sr := r.op.CreateElement("m:SignRequest")
		sr.CreateAttr("RequestID", id)
		oi := sr.CreateElement("m:OptionalInputs")
		add(oi, "dss:SignatureType", SignatureTypeCMS)
		add(oi, "m:IncludeEContent", strconv.FormatBool(!d.Detached))
		de := sr.CreateElement("m:Document")
		if d.ID != "" {
			de.CreateAttr("ID", d.ID)
		}
		if d.ShortText != "" {
			de.CreateAttr("ShortText", d.ShortText)
		}
		mime := d.MimeType
		if mime == "" {
			mime = "text/plain; charset=utf-8"
		}
		b64 := add(de, "dss:Base64Data", base64.StdEncoding.EncodeToString(d.Content))
		b64.CreateAttr("MimeType", mime)
		add(sr, "m:IncludeRevocationInfo", "false")
	}
	resp, err := c.call(ctx, ep, ns, "SignDocument", r)
	if err != nil {
		return nil, err
	}
	sigs, err := parseSignDocument(resp)
	if err != nil {
		return nil, err
	}
	// Order the answers like the requests (by RequestID; position as fallback).
	byID := map[string]Signature{}
	for _, s := range sigs {
		byID[s.RequestID] = s
	}
	out := make([]Signature, len(docs))
	for i, id := range ids {
		s, ok := byID[id]
		if !ok {
			if i >= len(sigs) {
				return nil, fmt.Errorf("konnektor: SignDocument: no response for request %s", id)
			}
			s = sigs[i]
		}
		out[i] = s
	}
	return out, nil
}

func parseSignDocument(resp *etree.Element) ([]Signature, error) {
	var out []Signature
	for _, sr := range resp.FindElements("SignResponse") {
		s := Signature{
			RequestID:  sr.SelectAttrValue("RequestID", ""),
			Status:     parseStatus(sr),
			DocumentID: attr(sr, "OptionalOutputs/DocumentWithSignature", "ID"),
		}
		if so := sr.FindElement("SignatureObject/Base64Signature"); so != nil {
			s.Type = so.SelectAttrValue("Type", "")
			v, err := decodeBase64(so.Text())
			if err != nil {
				return nil, fmt.Errorf("konnektor: SignDocument: request %s: signature is not base64: %w", s.RequestID, err)
			}
			s.Value = v
		}
		if !strings.EqualFold(s.Status.Result, ResultError) && len(s.Value) == 0 {
			return nil, fmt.Errorf("konnektor: SignDocument: request %s: no signature", s.RequestID)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("konnektor: SignDocument: response holds no SignResponse")
	}
	return out, nil
}

// VerifyDocument has the Konnektor check a CMS signature; content is the signed document for
// a detached signature and nil for an enveloping one. An invalid signature is not an error:
// see Verification.HighLevelResult.
func (c *Client) VerifyDocument(ctx context.Context, signature, content []byte) (Verification, error) {
	ep, v, err := c.endpoint(ctx, ServiceSignature, "7.5", "7.4")
	if err != nil {
		return Verification{}, err
	}
	ns := signatureNS(v)
	r := newRequest(ns, "VerifyDocument")
	c.addContext(r.op)
	add(r.op, "m:TvMode", "NONE")
	oi := r.op.CreateElement("m:OptionalInputs")
	rvr := oi.CreateElement("vr:ReturnVerificationReport")
	add(rvr, "vr:IncludeVerifier", "false")
	add(rvr, "vr:IncludeCertificateValues", "false")
	add(rvr, "vr:IncludeRevocationValues", "false")
	add(rvr, "vr:ExpandBinaryValues", "false")
	if content != nil {
		d := r.op.CreateElement("m:Document")
		add(d, "dss:Base64Data", base64.StdEncoding.EncodeToString(content)).CreateAttr("MimeType", "application/octet-stream")
	}
	so := r.op.CreateElement("dss:SignatureObject")
	add(so, "dss:Base64Signature", base64.StdEncoding.EncodeToString(signature)).CreateAttr("Type", SignatureTypeCMS)
	add(r.op, "m:IncludeRevocationInfo", "false")
	resp, err := c.call(ctx, ep, ns, "VerifyDocument", r)
	if err != nil {
		return Verification{}, err
	}
	return parseVerifyDocument(resp)
}

func parseVerifyDocument(resp *etree.Element) (Verification, error) {
	st := parseStatus(resp)
	if err := statusError("VerifyDocument", st); err != nil {
		return Verification{}, err
	}
	vr := resp.FindElement("VerificationResult")
	v := Verification{
		Status:          st,
		HighLevelResult: text(vr, "HighLevelResult"),
		TimestampType:   text(vr, "TimestampType"),
	}
	if v.HighLevelResult == "" {
		return Verification{}, errors.New("konnektor: VerifyDocument: no HighLevelResult")
	}
	if s := text(vr, "Timestamp"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return Verification{}, fmt.Errorf("konnektor: VerifyDocument: %w", err)
		}
		v.Timestamp = t
	}
	if report := resp.FindElement("OptionalOutputs//IndividualReport"); report != nil {
		if s := text(report, ".//SigningTime"); s != "" {
			if t, err := parseTime(s); err == nil {
				v.SigningTime = t
			}
		}
		res := report.FindElement("Result")
		v.ResultMajor = text(res, "ResultMajor")
		v.ResultMinor = text(res, "ResultMinor")
		v.Signer = text(report, ".//Subject")
	}
	return v, nil
}

// ActivateComfortSignature starts a Komfortsignatur session for the HBA and Context.UserID
// (one PIN.QES entry at the terminal) and returns the signature mode then in force.
func (c *Client) ActivateComfortSignature(ctx context.Context, cardHandle string) (string, error) {
	if c.Context.UserID == "" {
		return "", errors.New("konnektor: ActivateComfortSignature needs Context.UserID")
	}
	ep, _, err := c.endpoint(ctx, ServiceSignature, "7.5")
	if err != nil {
		return "", err
	}
	r := newRequest(NSSignatureService75, "ActivateComfortSignature")
	add(r.op, "CONN:CardHandle", cardHandle)
	c.addContext(r.op)
	resp, err := c.call(ctx, ep, NSSignatureService75, "ActivateComfortSignature", r)
	if err != nil {
		return "", err
	}
	if err := statusError("ActivateComfortSignature", parseStatus(resp)); err != nil {
		return "", err
	}
	return text(resp, "SignatureMode"), nil
}

// DeactivateComfortSignature ends the Komfortsignatur of the given HBAs.
func (c *Client) DeactivateComfortSignature(ctx context.Context, cardHandles ...string) error {
	if len(cardHandles) == 0 {
		return errors.New("konnektor: DeactivateComfortSignature: no card handle")
	}
	ep, _, err := c.endpoint(ctx, ServiceSignature, "7.5")
	if err != nil {
		return err
	}
	r := newRequest(NSSignatureService75, "DeactivateComfortSignature")
	for _, h := range cardHandles {
		add(r.op, "CONN:CardHandle", h)
	}
	resp, err := c.call(ctx, ep, NSSignatureService75, "DeactivateComfortSignature", r)
	if err != nil {
		return err
	}
	return statusError("DeactivateComfortSignature", parseStatus(resp))
}

// GetSignatureMode reports the Komfortsignatur configuration and, for Context.UserID, the
// session of the HBA.
func (c *Client) GetSignatureMode(ctx context.Context, cardHandle string) (SignatureMode, error) {
	ep, _, err := c.endpoint(ctx, ServiceSignature, "7.5")
	if err != nil {
		return SignatureMode{}, err
	}
	r := newRequest(NSSignatureService75, "GetSignatureMode")
	add(r.op, "CONN:CardHandle", cardHandle)
	c.addContext(r.op)
	resp, err := c.call(ctx, ep, NSSignatureService75, "GetSignatureMode", r)
	if err != nil {
		return SignatureMode{}, err
	}
	return parseGetSignatureMode(resp)
}

func parseGetSignatureMode(resp *etree.Element) (SignatureMode, error) {
	if err := statusError("GetSignatureMode", parseStatus(resp)); err != nil {
		return SignatureMode{}, err
	}
	m := SignatureMode{ComfortSignatureStatus: text(resp, "ComfortSignatureStatus")}
	var err error
	if m.ComfortSignatureMax, err = intText(resp, "ComfortSignatureMax", 0); err != nil {
		return SignatureMode{}, fmt.Errorf("konnektor: GetSignatureMode: %w", err)
	}
	if s := text(resp, "ComfortSignatureTimer"); s != "" {
		if m.ComfortSignatureTimer, err = ParseXSDuration(s); err != nil {
			return SignatureMode{}, err
		}
	}
	if si := resp.FindElement("SessionInfo"); si != nil {
		info := &SessionInfo{Mode: text(si, "SignatureMode")}
		if info.CountRemaining, err = intText(si, "CountRemaining", 0); err != nil {
			return SignatureMode{}, fmt.Errorf("konnektor: GetSignatureMode: %w", err)
		}
		if s := text(si, "TimeRemaining"); s != "" {
			if info.TimeRemaining, err = ParseXSDuration(s); err != nil {
				return SignatureMode{}, err
			}
		}
		m.Session = info
	}
	return m, nil
}
