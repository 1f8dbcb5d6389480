package konnektorsim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/wire"
)

// maxAuthInput bounds the data ExternalAuthenticate signs (a hash, at most SHA-512).
const maxAuthInput = 64

// externalAuthenticate signs the given bytes (a hash) with the card's C.AUT key: SMC-B with a
// verified PIN.SMC, or HBA with a verified PIN.CH.
func (s *Simulator) externalAuthenticate(req *soapRequest) (*response, error) {
	c, err := s.cardArg(req, "CardHandle")
	if err != nil {
		return nil, err
	}
	switch c.cfg.Type {
	case konnektor.CardSMCB:
		err = s.requireVerified(c, konnektor.PinSMC)
	case konnektor.CardHBA:
		err = s.requireVerified(c, konnektor.PinCH)
	default:
		err = faultf(konnektor.CodeWrongCardType, "ExternalAuthenticate braucht eine SMC-B oder einen HBA; %s ist eine %s", c.cfg.Handle, c.cfg.Type)
	}
	if err != nil {
		return nil, err
	}
	if t := wire.Text(req.op.FindElement("OptionalInputs/SignatureType")); t != "" && t != konnektor.SignatureTypeECDSA {
		return nil, faultf(konnektor.CodeBadSignatureType, "SignatureType %q; die Karten des Simulators haben ECC-Schlüssel (%s)", t, konnektor.SignatureTypeECDSA)
	}
	data := req.op.FindElement("BinaryString/Base64Data")
	if data == nil {
		return nil, syntaxf("BinaryString/Base64Data missing")
	}
	in, err := wire.DecodeBase64(data.Text())
	if err != nil || len(in) == 0 || len(in) > maxAuthInput {
		return nil, syntaxf("BinaryString must be base64 of 1..%d bytes", maxAuthInput)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, c.certs[konnektor.CertAUT].Key, in)
	if err != nil {
		return nil, fmt.Errorf("ExternalAuthenticate: %w", err)
	}
	resp := newResponse(req.ns, "ExternalAuthenticateResponse")
	s.addStatus(resp.op, nil)
	so := resp.op.CreateElement("dss:SignatureObject")
	add(so, "dss:Base64Signature", base64.StdEncoding.EncodeToString(sig)).CreateAttr("Type", konnektor.SignatureTypeECDSA)
	return resp, nil
}

// readCardCertificate returns the requested certificates of a card. The simulator's cards hold
// ECC certificates only; a request for RSA (Crypt) gets them too.
func (s *Simulator) readCardCertificate(req *soapRequest) (*response, error) {
	c, err := s.cardArg(req, "CardHandle")
	if err != nil {
		return nil, err
	}
	refs := req.op.FindElements("CertRefList/CertRef")
	if len(refs) == 0 {
		return nil, syntaxf("CertRefList is empty")
	}
	if crypt := wire.Text(req.op.FindElement("Crypt")); crypt != "" && crypt != konnektor.CryptECC && crypt != konnektor.CryptRSA && crypt != "RSA_ECC" {
		return nil, syntaxf("Crypt %q: ECC, RSA or RSA_ECC", crypt)
	}
	resp := newResponse(req.ns, "ReadCardCertificateResponse")
	s.addStatus(resp.op, nil)
	list := resp.op.CreateElement("CERTCMN:X509DataInfoList")
	for _, r := range refs {
		ref := wire.Text(r)
		id, ok := c.certs[ref]
		if !ok {
			return nil, faultf(konnektor.CodeNoCertificate, "%s hat kein Zertifikat %s", c.cfg.Handle, ref)
		}
		info := list.CreateElement("CERTCMN:X509DataInfo")
		add(info, "CERTCMN:CertRef", ref)
		data := info.CreateElement("CERTCMN:X509Data")
		is := data.CreateElement("CERTCMN:X509IssuerSerial")
		add(is, "CERTCMN:X509IssuerName", id.Certificate.Issuer.String())
		add(is, "CERTCMN:X509SerialNumber", id.Certificate.SerialNumber.String())
		add(data, "CERTCMN:X509SubjectName", id.Certificate.Subject.String())
		add(data, "CERTCMN:X509Certificate", base64.StdEncoding.EncodeToString(id.Certificate.Raw))
	}
	return resp, nil
}

// verifyCertificate checks a certificate against the simulator PKI: VALID when it chains to the
// CA at the verification time, INCONCLUSIVE when it is from another CA (or Go cannot read it,
// as with brainpool keys of real TI certificates), INVALID when it is expired or broken. The
// roles are the profession OIDs of its admission extension.
func (s *Simulator) verifyCertificate(req *soapRequest) (*response, error) {
	raw := req.op.FindElement("X509Certificate")
	if raw == nil {
		return nil, syntaxf("X509Certificate missing")
	}
	der, err := wire.DecodeBase64(raw.Text())
	if err != nil || len(der) == 0 {
		return nil, syntaxf("X509Certificate is not base64")
	}
	at := s.now()
	if vt := wire.Text(req.op.FindElement("VerificationTime")); vt != "" {
		if at, err = time.Parse(time.RFC3339, vt); err != nil {
			return nil, syntaxf("VerificationTime %q is not an xs:dateTime", vt)
		}
	}
	result := konnektor.Inconclusive
	var roles []string
	if cert, err := x509.ParseCertificate(der); err == nil {
		if a, ok := admission.Of(cert); ok {
			roles = a.ProfessionOIDs
		}
		_, verr := cert.Verify(x509.VerifyOptions{Roots: s.pki.Pool(), CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		var unknown x509.UnknownAuthorityError
		switch {
		case verr == nil:
			result = konnektor.Valid
		case errors.As(verr, &unknown):
		default:
			result = konnektor.Invalid
		}
	}
	resp := newResponse(req.ns, "VerifyCertificateResponse")
	s.addStatus(resp.op, nil)
	add(resp.op.CreateElement("m:VerificationStatus"), "m:VerificationResult", result)
	rl := resp.op.CreateElement("m:RoleList")
	for _, r := range roles {
		add(rl, "m:Role", r)
	}
	return resp, nil
}
