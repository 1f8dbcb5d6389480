package konnektor

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/redclone/red/ti/wire"
)

// AuthSignature is the answer of ExternalAuthenticate.
type AuthSignature struct {
	Type  string // e.g. urn:bsi:tr:03111:ecdsa
	Value []byte // for ECDSA: the ASN.1 DER signature, as the Konnektors return it
}

// ExternalAuthenticate has the card (an SMC-B, or an HBA) sign hash with its authentication
// key (C.AUT), e.g. the challenge of the IDP login. ECDSA (urn:bsi:tr:03111:ecdsa) is
// requested.
func (c *Client) ExternalAuthenticate(ctx context.Context, cardHandle string, hash []byte) (AuthSignature, error) {
	if len(hash) == 0 {
		return AuthSignature{}, errors.New("konnektor: ExternalAuthenticate: nothing to sign")
	}
	ep, _, err := c.endpoint(ctx, ServiceAuthSignature, "7.4")
	if err != nil {
		return AuthSignature{}, err
	}
	r := newRequest(NSSignatureService74, "ExternalAuthenticate")
	add(r.op, "CONN:CardHandle", cardHandle)
	c.addContext(r.op)
	oi := r.op.CreateElement("m:OptionalInputs")
	add(oi, "dss:SignatureType", SignatureTypeECDSA)
	bs := r.op.CreateElement("m:BinaryString")
	add(bs, "dss:Base64Data", base64.StdEncoding.EncodeToString(hash)).CreateAttr("MimeType", "application/octet-stream")
	resp, err := c.call(ctx, ep, NSSignatureService74, "ExternalAuthenticate", r)
	if err != nil {
		return AuthSignature{}, err
	}
	return parseExternalAuthenticate(resp)
}

func parseExternalAuthenticate(resp *etree.Element) (AuthSignature, error) {
	if err := statusError("ExternalAuthenticate", parseStatus(resp)); err != nil {
		return AuthSignature{}, err
	}
	so := resp.FindElement("SignatureObject/Base64Signature")
	if so == nil {
		return AuthSignature{}, errors.New("konnektor: ExternalAuthenticate: no signature")
	}
	v, err := decodeBase64(so.Text())
	if err != nil {
		return AuthSignature{}, fmt.Errorf("konnektor: ExternalAuthenticate: signature is not base64: %w", err)
	}
	return AuthSignature{Type: so.SelectAttrValue("Type", ""), Value: v}, nil
}

// CardCertificate is one certificate read from a card.
type CardCertificate struct {
	Ref          string // C.AUT, C.ENC, C.SIG or C.QES
	DER          []byte
	IssuerName   string // as the Konnektor wrote it
	SerialNumber string
	SubjectName  string
	// Certificate is the parsed DER, nil when Go cannot parse it (real TI certificates with
	// brainpool keys).
	Certificate *x509.Certificate
}

// ReadCardCertificate reads certificates of a card (CertificateService 6.0); refs are
// C.AUT, C.ENC, C.SIG, C.QES. ECC certificates are requested.
func (c *Client) ReadCardCertificate(ctx context.Context, cardHandle string, refs ...string) ([]CardCertificate, error) {
	if len(refs) == 0 {
		return nil, errors.New("konnektor: ReadCardCertificate: no certificate reference")
	}
	ep, _, err := c.endpoint(ctx, ServiceCertificate, "6.0")
	if err != nil {
		return nil, err
	}
	r := newRequest(NSCertificateService, "ReadCardCertificate")
	add(r.op, "CONN:CardHandle", cardHandle)
	c.addContext(r.op)
	list := r.op.CreateElement("m:CertRefList")
	for _, ref := range refs {
		add(list, "m:CertRef", ref)
	}
	add(r.op, "m:Crypt", CryptECC)
	resp, err := c.call(ctx, ep, NSCertificateService, "ReadCardCertificate", r)
	if err != nil {
		return nil, err
	}
	return parseReadCardCertificate(resp)
}

func parseReadCardCertificate(resp *etree.Element) ([]CardCertificate, error) {
	if err := statusError("ReadCardCertificate", parseStatus(resp)); err != nil {
		return nil, err
	}
	var out []CardCertificate
	for _, info := range resp.FindElements("X509DataInfoList/X509DataInfo") {
		data := info.FindElement("X509Data")
		cc := CardCertificate{
			Ref:          text(info, "CertRef"),
			IssuerName:   collapse(text(data, "X509IssuerSerial/X509IssuerName")),
			SerialNumber: text(data, "X509IssuerSerial/X509SerialNumber"),
			SubjectName:  collapse(text(data, "X509SubjectName")),
		}
		der, err := decodeBase64(text(data, "X509Certificate"))
		if err != nil || len(der) == 0 {
			return nil, fmt.Errorf("konnektor: ReadCardCertificate: %s: certificate is not base64", cc.Ref)
		}
		cc.DER = der
		if cert, err := x509.ParseCertificate(der); err == nil {
			cc.Certificate = cert
		}
		out = append(out, cc)
	}
	return out, nil
}

// collapse joins names that vendors wrapped over lines.
func collapse(s string) string {
	out := make([]rune, 0, len(s))
	space := false
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' || r == ' ' {
			space = true
			continue
		}
		if space && len(out) > 0 {
			out = append(out, ' ')
		}
		space = false
		out = append(out, r)
	}
	return string(out)
}

// CertificateVerification is the answer of VerifyCertificate.
type CertificateVerification struct {
	Result string   // VALID, INCONCLUSIVE or INVALID
	Roles  []string // profession OIDs of the certificate (RoleList)
}

// VerifyCertificate has the Konnektor check a certificate (CertificateService 6.0), e.g. the
// IDP's signing certificate during the IDP login.
func (c *Client) VerifyCertificate(ctx context.Context, der []byte) (CertificateVerification, error) {
	if len(der) == 0 {
		return CertificateVerification{}, errors.New("konnektor: VerifyCertificate: no certificate")
	}
	ep, _, err := c.endpoint(ctx, ServiceCertificate, "6.0")
	if err != nil {
		return CertificateVerification{}, err
	}
	r := newRequest(NSCertificateService, "VerifyCertificate")
	c.addContext(r.op)
	add(r.op, "CERTCMN:X509Certificate", base64.StdEncoding.EncodeToString(der))
	resp, err := c.call(ctx, ep, NSCertificateService, "VerifyCertificate", r)
	if err != nil {
		return CertificateVerification{}, err
	}
	return parseVerifyCertificate(resp)
}

func parseVerifyCertificate(resp *etree.Element) (CertificateVerification, error) {
	if err := statusError("VerifyCertificate", parseStatus(resp)); err != nil {
		return CertificateVerification{}, err
	}
	v := CertificateVerification{Result: text(resp, "VerificationStatus/VerificationResult")}
	if v.Result == "" {
		return CertificateVerification{}, errors.New("konnektor: VerifyCertificate: no VerificationResult")
	}
	for _, r := range resp.FindElements("RoleList/Role") {
		v.Roles = append(v.Roles, wire.Text(r))
	}
	return v, nil
}
