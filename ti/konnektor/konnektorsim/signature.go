package konnektorsim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/simpki"
	"github.com/redclone/red/ti/wire"
)

// maxBatch bounds the documents of one SignDocument call.
const maxBatch = 250

// signRequest is one parsed SignRequest.
type signRequest struct {
	requestID string
	docID     string
	shortText string
	mimeType  string
	content   []byte
	sigType   string
	enveloped bool
}

func parseSignRequests(op *etree.Element) ([]signRequest, error) {
	srs := op.FindElements("SignRequest")
	if len(srs) == 0 {
		return nil, syntaxf("SignDocument without SignRequest")
	}
	if len(srs) > maxBatch {
		return nil, syntaxf("%d SignRequests; at most %d per call", len(srs), maxBatch)
	}
	out := make([]signRequest, 0, len(srs))
	seen := map[string]bool{}
	for i, sr := range srs {
		r := signRequest{requestID: sr.SelectAttrValue("RequestID", ""), sigType: konnektor.SignatureTypeCMS}
		if r.requestID == "" {
			return nil, syntaxf("SignRequest %d without RequestID", i+1)
		}
		if seen[r.requestID] {
			return nil, syntaxf("RequestID %q twice", r.requestID)
		}
		seen[r.requestID] = true
		if t := wire.Text(sr.FindElement("OptionalInputs/SignatureType")); t != "" {
			r.sigType = t
		}
		var err error
		if r.enveloped, err = boolArg(sr, "OptionalInputs/IncludeEContent", false); err != nil {
			return nil, err
		}
		doc := sr.FindElement("Document")
		if doc == nil {
			return nil, syntaxf("SignRequest %s without Document", r.requestID)
		}
		r.docID, r.shortText = doc.SelectAttrValue("ID", ""), doc.SelectAttrValue("ShortText", "")
		data := doc.FindElement("Base64Data")
		if data == nil {
			data = doc.FindElement("Base64XML")
		}
		if data == nil {
			return nil, faultf(konnektor.CodeBadDocument, "SignRequest %s: Document without Base64Data or Base64XML", r.requestID)
		}
		r.mimeType = data.SelectAttrValue("MimeType", "")
		if r.content, err = wire.DecodeBase64(data.Text()); err != nil {
			return nil, syntaxf("SignRequest %s: document is not base64", r.requestID)
		}
		out = append(out, r)
	}
	return out, nil
}

// signDocument signs a batch with the HBA's C.QES (one PIN.QES entry, or Komfortsignatur) or
// the SMC-B's C.SIG (PIN.SMC must be verified).
func (s *Simulator) signDocument(req *soapRequest) (*response, error) {
	c, err := s.cardArg(req, "CardHandle")
	if err != nil {
		return nil, err
	}
	reqs, err := parseSignRequests(req.op)
	if err != nil {
		return nil, err
	}
	var key *simpki.Identity
	switch c.cfg.Type {
	case konnektor.CardHBA:
		key = c.certs[konnektor.CertQES]
		usedComfort, err := s.useComfort(c, req.ctx.UserID, len(reqs))
		if err != nil {
			return nil, err
		}
		if !usedComfort {
			authErr := s.authorizeQES(c)
			if err := s.state.save(); err != nil {
				return nil, err
			}
			if authErr != nil {
				return nil, authErr
			}
		}
	case konnektor.CardSMCB:
		key = c.certs[konnektor.CertSIG]
		if err := s.requireVerified(c, konnektor.PinSMC); err != nil {
			return nil, err
		}
	default:
		return nil, faultf(konnektor.CodeNoSignatureCard, "%s ist eine %s", c.cfg.Handle, c.cfg.Type)
	}
	resp := newResponse(req.ns, "SignDocumentResponse")
	for _, r := range reqs {
		sr := resp.op.CreateElement("m:SignResponse")
		sr.CreateAttr("RequestID", r.requestID)
		if r.sigType != konnektor.SignatureTypeCMS {
			st := sr.CreateElement("CONN:Status")
			add(st, "CONN:Result", konnektor.ResultError)
			s.addError(st, "CONN:Error", faultf(konnektor.CodeBadSignatureType, "SignatureType %q; der Simulator erzeugt CAdES (%s)", r.sigType, konnektor.SignatureTypeCMS))
			continue
		}
		sig, err := cms.Sign(r.content, key.Certificate, key.Key, !r.enveloped, s.now())
		if err != nil {
			return nil, fmt.Errorf("signing %s: %w", r.requestID, err)
		}
		s.addStatus(sr, nil)
		dws := sr.CreateElement("m:OptionalOutputs").CreateElement("m:DocumentWithSignature")
		if r.docID != "" {
			dws.CreateAttr("ID", r.docID)
		}
		if r.shortText != "" {
			dws.CreateAttr("ShortText", r.shortText)
		}
		b := dws.CreateElement("dss:Base64Data")
		if r.mimeType != "" {
			b.CreateAttr("MimeType", r.mimeType)
		}
		so := sr.CreateElement("dss:SignatureObject")
		add(so, "dss:Base64Signature", base64.StdEncoding.EncodeToString(sig)).CreateAttr("Type", konnektor.SignatureTypeCMS)
	}
	return resp, nil
}

// useComfort spends n signatures of the Komfortsignatur of (card, userID) if one exists. An
// expired or exhausted session ends with a fault; the next call asks for the PIN again.
func (s *Simulator) useComfort(c *card, userID string, n int) (bool, error) {
	if userID == "" {
		return false, nil
	}
	cs := s.state.comfort(c.cfg.Handle, userID)
	if cs == nil {
		return false, nil
	}
	now := s.now()
	switch {
	case !now.Before(cs.Expires):
		s.state.endComfort(c.cfg.Handle, userID)
		if err := s.state.save(); err != nil {
			return false, err
		}
		return false, faultf(konnektor.CodeComfortTimer, "Komfortsignatur für %s abgelaufen am %s; erneut aktivieren", userID, xsDateTime(cs.Expires))
	case cs.Remaining == 0:
		s.state.endComfort(c.cfg.Handle, userID)
		if err := s.state.save(); err != nil {
			return false, err
		}
		return false, faultf(konnektor.CodeComfortCount, "%s", c.cfg.Handle)
	case cs.Remaining < n:
		return false, faultf(konnektor.CodeComfortCount, "%s: noch %d Komfortsignaturen, %d Dokumente", c.cfg.Handle, cs.Remaining, n)
	}
	cs.Remaining -= n
	return true, s.state.save()
}

// verifyDocument checks a CMS signature against the simulator PKI: VALID, INCONCLUSIVE when
// the signature is intact but its certificate is not from this PKI (e.g. real TI cards), INVALID
// otherwise.
func (s *Simulator) verifyDocument(req *soapRequest) (*response, error) {
	so := req.op.FindElement("SignatureObject/Base64Signature")
	var content []byte
	if d := req.op.FindElement("Document"); d != nil {
		data := d.FindElement("Base64Data")
		if data == nil {
			data = d.FindElement("Base64XML")
		}
		if data == nil {
			return nil, faultf(konnektor.CodeBadDocument, "Document without Base64Data or Base64XML")
		}
		var err error
		if content, err = wire.DecodeBase64(data.Text()); err != nil {
			return nil, syntaxf("Document is not base64")
		}
	}
	if so == nil && content == nil {
		return nil, syntaxf("VerifyDocument needs a SignatureObject or a Document")
	}
	wantReport := req.op.FindElement("OptionalInputs/ReturnVerificationReport") != nil
	now := s.now()

	result := konnektor.Invalid
	minor := "urn:oasis:names:tc:dss:1.0:resultminor:invalid:IncorrectSignature"
	var info cms.Info
	var infoErr error
	der, decodeErr := wire.DecodeBase64(wire.Text(so))
	if so == nil || decodeErr != nil {
		infoErr = errors.New("SignatureObject is not base64")
		minor = "urn:oasis:names:tc:dss:1.0:resultminor:invalid:NotParseableXMLDocument"
	} else {
		info, infoErr = cms.Inspect(der)
		_, _, err := cms.Verify(der, content, s.pki.Pool(), now)
		switch {
		case err == nil:
			result = konnektor.Valid
			minor = "urn:oasis:names:tc:dss:1.0:resultminor:valid:signature:OnAllDocuments"
		case errors.Is(err, cms.ErrUntrusted):
			result = konnektor.Inconclusive
			minor = "urn:oasis:names:tc:dss:1.0:resultminor:CertificateChainNotComplete"
		}
	}
	resp := newResponse(req.ns, "VerifyDocumentResponse")
	s.addStatus(resp.op, nil)
	vr := resp.op.CreateElement("m:VerificationResult")
	add(vr, "m:HighLevelResult", result)
	if infoErr == nil && !info.SigningTime.IsZero() {
		add(vr, "m:TimestampType", "SIGNATURE_EMBEDDED_TIMESTAMP")
		add(vr, "m:Timestamp", xsDateTime(info.SigningTime))
	} else {
		add(vr, "m:TimestampType", "SYSTEM_TIMESTAMP")
		add(vr, "m:Timestamp", xsDateTime(now))
	}
	if !wantReport {
		return resp, nil
	}
	major := "urn:oasis:names:tc:dss:1.0:resultmajor:Success"
	if result == konnektor.Invalid {
		major = "urn:oasis:names:tc:dss:1.0:resultmajor:RequesterError"
	}
	rep := resp.op.CreateElement("m:OptionalOutputs").CreateElement("vr:VerificationReport")
	add(rep.CreateElement("dss:VerificationTimeInfo"), "dss:VerificationTime", xsDateTime(now))
	ind := rep.CreateElement("vr:IndividualReport")
	sp := ind.CreateElement("vr:SignedObjectIdentifier").CreateElement("vr:SignedProperties")
	if infoErr == nil && !info.SigningTime.IsZero() {
		add(sp.CreateElement("vr:SignedSignatureProperties"), "xades:SigningTime", xsDateTime(info.SigningTime))
	}
	res := ind.CreateElement("dss:Result")
	add(res, "dss:ResultMajor", major)
	add(res, "dss:ResultMinor", minor)
	if infoErr == nil && info.Signer != nil {
		pv := ind.CreateElement("vr:Details").CreateElement("vr:DetailedSignatureReport").CreateElement("vr:CertificatePathValidity")
		summary := "urn:oasis:names:tc:dss:1.0:detail:valid"
		if result != konnektor.Valid {
			summary = "urn:oasis:names:tc:dss:1.0:detail:indetermined"
		}
		add(pv.CreateElement("vr:PathValiditySummary"), "vr:ResultMajor", summary)
		id := pv.CreateElement("vr:CertificateIdentifier")
		add(id, "ds:X509IssuerName", info.Signer.Issuer.String())
		add(id, "ds:X509SerialNumber", info.Signer.SerialNumber.String())
		cv := pv.CreateElement("vr:PathValidityDetail").CreateElement("vr:CertificateValidity")
		add(cv, "vr:Subject", info.Signer.Subject.String())
	}
	return resp, nil
}

// hbaArg resolves an HBA card handle for the Komfortsignatur operations.
func (s *Simulator) hbaArg(req *soapRequest) (*card, error) {
	c, err := s.cardArg(req, "CardHandle")
	if err != nil {
		return nil, err
	}
	if c.cfg.Type != konnektor.CardHBA {
		return nil, faultf(konnektor.CodeNoSignatureCard, "Komfortsignatur nur mit einem HBA; %s ist eine %s", c.cfg.Handle, c.cfg.Type)
	}
	return c, nil
}

func (s *Simulator) activateComfortSignature(req *soapRequest) (*response, error) {
	c, err := s.hbaArg(req)
	if err != nil {
		return nil, err
	}
	if s.cfg.ComfortSignature.Disabled {
		return nil, faultf(konnektor.CodeComfortDisabled, "SAK_COMFORT_SIGNATURE ist im Konnektor ausgeschaltet")
	}
	if req.ctx.UserID == "" {
		return nil, syntaxf("ActivateComfortSignature braucht eine UserId im Context")
	}
	authErr := s.authorizeQES(c)
	if authErr == nil {
		max, timer := s.cfg.comfortLimits()
		s.state.setComfort(&comfortSession{Handle: c.cfg.Handle, UserID: req.ctx.UserID, Remaining: max, Expires: s.now().Add(timer)})
	}
	if err := s.state.save(); err != nil {
		return nil, err
	}
	if authErr != nil {
		return nil, authErr
	}
	resp := newResponse(req.ns, "ActivateComfortSignatureResponse")
	s.addStatus(resp.op, nil)
	add(resp.op, "m:SignatureMode", konnektor.ModeComfort)
	return resp, nil
}

func (s *Simulator) deactivateComfortSignature(req *soapRequest) (*response, error) {
	handles := req.op.FindElements("CardHandle")
	if len(handles) == 0 {
		return nil, syntaxf("CardHandle missing")
	}
	var cards []*card
	for _, h := range handles {
		c, ok := s.handles[wire.Text(h)]
		if !ok {
			return nil, faultf(konnektor.CodeInvalidHandle, "CardHandle %q ist keiner gesteckten Karte zugeordnet", wire.Text(h))
		}
		cards = append(cards, c)
	}
	for _, c := range cards {
		for _, cs := range s.state.comfortOf(c.cfg.Handle) {
			s.state.endComfort(cs.Handle, cs.UserID)
		}
	}
	if err := s.state.save(); err != nil {
		return nil, err
	}
	resp := newResponse(req.ns, "DeactivateComfortSignatureResponse")
	s.addStatus(resp.op, nil)
	return resp, nil
}

func (s *Simulator) getSignatureMode(req *soapRequest) (*response, error) {
	c, err := s.hbaArg(req)
	if err != nil {
		return nil, err
	}
	max, timer := s.cfg.comfortLimits()
	resp := newResponse(req.ns, "GetSignatureModeResponse")
	s.addStatus(resp.op, nil)
	status := konnektor.ComfortEnabled
	if s.cfg.ComfortSignature.Disabled {
		status = konnektor.ComfortDisabled
	}
	add(resp.op, "m:ComfortSignatureStatus", status)
	add(resp.op, "m:ComfortSignatureMax", strconv.Itoa(max))
	add(resp.op, "m:ComfortSignatureTimer", konnektor.FormatXSDuration(timer))
	if req.ctx.UserID != "" {
		mode, count, left := konnektor.ModePIN, 0, time.Duration(0)
		if cs := s.state.comfort(c.cfg.Handle, req.ctx.UserID); cs != nil {
			if rest := cs.Expires.Sub(s.now()); rest > 0 && cs.Remaining > 0 {
				mode, count, left = konnektor.ModeComfort, cs.Remaining, rest
			}
		}
		si := resp.op.CreateElement("m:SessionInfo")
		add(si, "m:SignatureMode", mode)
		add(si, "m:CountRemaining", strconv.Itoa(count))
		add(si, "m:TimeRemaining", konnektor.FormatXSDuration(left))
	}
	return resp, nil
}
