// Package cms creates and checks CMS SignedData (RFC 5652) in the CAdES shape the Konnektor's
// SignatureService produces for e-prescriptions: SHA-256, signed attributes content-type,
// message-digest, signing-time and signing-certificate-v2, the signer's certificate embedded.
package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sort"
	"time"
)

// Errors returned by Verify and Inspect. Every error Verify returns wraps exactly one of them.
var (
	// ErrMalformed: the bytes are not a SignedData this package understands.
	ErrMalformed = errors.New("cms: malformed signed data")
	// ErrNoContent: the signature is detached and no content was given (or the reverse).
	ErrNoContent = errors.New("cms: content missing")
	// ErrSignature: digest or signature value do not match the content and the certificate.
	ErrSignature = errors.New("cms: signature does not verify")
	// ErrUntrusted: the signature is mathematically valid but the signer's certificate does
	// not chain to the given roots at the given time.
	ErrUntrusted = errors.New("cms: signer certificate not trusted")
)

// Object identifiers used here.
var (
	oidData                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidAttrContentType      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrSigningCertV2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSAWithSHA256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidECPublicKey          = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidRSAEncryption        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	asn1NULL                = asn1.RawValue{Tag: asn1.TagNull}
	sha256AlgorithmIdentity = pkix.AlgorithmIdentifier{Algorithm: oidSHA256}
)

// pssSaltLength is the salt length of RSASSA-PSS signatures made here (the hash length, as the
// Konnektors do).
const pssSaltLength = 32

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type pssParameters struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,optional,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,optional,tag:1"`
	SaltLength   int                      `asn1:"explicit,optional,tag:2,default:20"`
	TrailerField int                      `asn1:"explicit,optional,tag:3,default:1"`
}

// Sign returns a DER ContentInfo holding SignedData over content, signed by key for cert with
// SHA-256: ECDSA keys sign as ecdsa-with-SHA256, RSA keys as RSASSA-PSS (SHA-256, MGF1-SHA-256,
// salt 32). The signed attributes are content-type (id-data), message-digest, signing-time and
// signing-certificate-v2 (hash and issuer/serial of cert). detached leaves the content out of
// the structure (the verifier must supply it).
func Sign(content []byte, cert *x509.Certificate, key crypto.Signer, detached bool, signingTime time.Time) ([]byte, error) {
	if cert == nil || key == nil {
		return nil, errors.New("cms: sign needs a certificate and a key")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("cms: the key does not belong to the certificate")
	}
	digest := sha256.Sum256(content)
	certHash := sha256.Sum256(cert.Raw)

	issuerSerial, err := asn1.Marshal(struct {
		Issuer []asn1.RawValue
		Serial *big.Int
	}{
		Issuer: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer}},
		Serial: cert.SerialNumber,
	})
	if err != nil {
		return nil, fmt.Errorf("cms: issuer serial: %w", err)
	}
	signingCert, err := asn1.Marshal(struct{ Certs []essCertIDv2 }{
		Certs: []essCertIDv2{{CertHash: certHash[:], IssuerSerial: asn1.RawValue{FullBytes: issuerSerial}}},
	})
	if err != nil {
		return nil, fmt.Errorf("cms: signing certificate: %w", err)
	}
	attrs, err := encodeAttributes([]attributeValue{
		{oidAttrContentType, oidData},
		{oidAttrSigningTime, signingTime.UTC()},
		{oidAttrMessageDigest, digest[:]},
		{oidAttrSigningCertV2, asn1.RawValue{FullBytes: signingCert}},
	})
	if err != nil {
		return nil, err
	}
	attrsDigest := sha256.Sum256(attrs)

	var sigAlg pkix.AlgorithmIdentifier
	var opts crypto.SignerOpts = crypto.SHA256
	switch cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}
	case *rsa.PublicKey:
		params, err := pssParams()
		if err != nil {
			return nil, err
		}
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: oidRSASSAPSS, Parameters: asn1.RawValue{FullBytes: params}}
		opts = &rsa.PSSOptions{SaltLength: pssSaltLength, Hash: crypto.SHA256}
	default:
		return nil, fmt.Errorf("cms: unsupported key type %T", cert.PublicKey)
	}
	sig, err := key.Sign(rand.Reader, attrsDigest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("cms: signing: %w", err)
	}

	sid, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return nil, fmt.Errorf("cms: signer identifier: %w", err)
	}
	// The signed attributes travel as [0] IMPLICIT; they were signed as a SET (tag 0x31).
	signedAttrs := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: attrsContent(attrs)}
	encap := encapContentInfo{EContentType: oidData}
	if !detached {
		octets, err := asn1.Marshal(content)
		if err != nil {
			return nil, fmt.Errorf("cms: content: %w", err)
		}
		encap.EContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: octets}
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256AlgorithmIdentity},
		EncapContentInfo: encap,
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: cert.Raw},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                asn1.RawValue{FullBytes: sid},
			DigestAlgorithm:    sha256AlgorithmIdentity,
			SignedAttrs:        signedAttrs,
			SignatureAlgorithm: sigAlg,
			Signature:          sig,
		}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("cms: signed data: %w", err)
	}
	out, err := asn1.Marshal(contentInfo{
		ContentType: oidSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
	if err != nil {
		return nil, fmt.Errorf("cms: content info: %w", err)
	}
	return out, nil
}

func pssParams() ([]byte, error) {
	sha256Params := pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1NULL}
	mgfHash, err := asn1.Marshal(sha256Params)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pssParameters{
		Hash:         sha256Params,
		MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfHash}},
		SaltLength:   pssSaltLength,
		TrailerField: 1,
	})
}

type attributeValue struct {
	oid   asn1.ObjectIdentifier
	value any
}

// encodeAttributes returns the DER SET OF Attribute (tag 0x31), sorted as DER requires.
func encodeAttributes(values []attributeValue) ([]byte, error) {
	encoded := make([][]byte, 0, len(values))
	for _, v := range values {
		val, err := asn1.Marshal(v.value)
		if err != nil {
			return nil, fmt.Errorf("cms: attribute %s: %w", v.oid, err)
		}
		attr, err := asn1.Marshal(attribute{Type: v.oid, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: val}})
		if err != nil {
			return nil, fmt.Errorf("cms: attribute %s: %w", v.oid, err)
		}
		encoded = append(encoded, attr)
	}
	sort.Slice(encoded, func(i, j int) bool { return bytes.Compare(encoded[i], encoded[j]) < 0 })
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(encoded, nil)})
}

// attrsContent strips the SET header from DER-encoded attributes.
func attrsContent(set []byte) []byte {
	var rv asn1.RawValue
	if _, err := asn1.Unmarshal(set, &rv); err != nil {
		return nil
	}
	return rv.Bytes
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

// Info is what a SignedData says about itself, before any check.
type Info struct {
	Content      []byte              // the encapsulated content; nil when detached
	Detached     bool                // no content inside
	SigningTime  time.Time           // the first signer's signing-time attribute; zero if absent
	Signer       *x509.Certificate   // the first signer's certificate, if embedded
	Certificates []*x509.Certificate // all embedded certificates that Go can parse
}

// parsed is a decoded SignedData.
type parsed struct {
	sd    signedData
	info  Info
	certs []*x509.Certificate
}

func parse(der []byte) (*parsed, error) {
	norm, err := normalize(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(norm, &ci); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not a ContentInfo", ErrMalformed)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %s is not signed-data", ErrMalformed, ci.ContentType)
	}
	p := &parsed{}
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &p.sd); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, err)
	}
	if len(p.sd.SignerInfos) == 0 {
		return nil, fmt.Errorf("%w: no signer", ErrMalformed)
	}
	if len(p.sd.Certificates.Bytes) > 0 {
		for rest := p.sd.Certificates.Bytes; len(rest) > 0; {
			var raw asn1.RawValue
			var err error
			rest, err = asn1.Unmarshal(rest, &raw)
			if err != nil {
				return nil, fmt.Errorf("%w: certificates: %v", ErrMalformed, err)
			}
			if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
				continue // attribute or other certificate choices
			}
			if c, err := x509.ParseCertificate(raw.FullBytes); err == nil {
				p.certs = append(p.certs, c)
			}
		}
	}
	p.info.Certificates = p.certs
	if eContent := p.sd.EncapContentInfo.EContent; len(eContent.FullBytes) > 0 {
		var octets []byte
		if _, err := asn1.Unmarshal(eContent.Bytes, &octets); err != nil {
			return nil, fmt.Errorf("%w: eContent is not an OCTET STRING", ErrMalformed)
		}
		p.info.Content = octets
		if p.info.Content == nil {
			p.info.Content = []byte{}
		}
	} else {
		p.info.Detached = true
	}
	si := p.sd.SignerInfos[0]
	p.info.Signer = p.signerCert(si)
	if attrs, err := parseAttributes(si.SignedAttrs); err == nil {
		if v, ok := attrs[oidAttrSigningTime.String()]; ok {
			var t time.Time
			if _, err := asn1.Unmarshal(v, &t); err == nil {
				p.info.SigningTime = t
			}
		}
	}
	return p, nil
}

// Inspect decodes a SignedData (DER or BER) without checking anything.
func Inspect(der []byte) (Info, error) {
	p, err := parse(der)
	if err != nil {
		return Info{}, err
	}
	return p.info, nil
}

// signerCert finds the certificate a SignerInfo names.
func (p *parsed) signerCert(si signerInfo) *x509.Certificate {
	sid := si.SID
	if sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 { // subjectKeyIdentifier
		for _, c := range p.certs {
			if bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c
			}
		}
		return nil
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil {
		return nil
	}
	for _, c := range p.certs {
		if bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) && c.SerialNumber.Cmp(ias.Serial) == 0 {
			return c
		}
	}
	return nil
}

// parseAttributes maps attribute OIDs to the DER of their first value.
func parseAttributes(raw asn1.RawValue) (map[string][]byte, error) {
	out := map[string][]byte{}
	for rest := raw.Bytes; len(rest) > 0; {
		var a attribute
		var err error
		rest, err = asn1.Unmarshal(rest, &a)
		if err != nil {
			return nil, err
		}
		var first asn1.RawValue
		if _, err := asn1.Unmarshal(a.Values.Bytes, &first); err != nil {
			return nil, err
		}
		out[a.Type.String()] = first.FullBytes
	}
	return out, nil
}

// Verify checks a SignedData (DER, or BER as some Konnektors write it) and returns the signed
// content and the signer's certificate. detachedContent must be given exactly when the
// signature is detached. Every signer must verify; the content-type and message-digest
// attributes must match, a signing-certificate-v2 attribute must name the signer's
// certificate, and the certificate must chain to roots at time at (now if zero; embedded
// certificates serve as intermediates). A mathematically valid signature whose certificate
// does not chain returns the content, the signer and an error wrapping ErrUntrusted.
func Verify(der []byte, detachedContent []byte, roots *x509.CertPool, at time.Time) (content []byte, signer *x509.Certificate, err error) {
	p, err := parse(der)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case p.info.Detached && detachedContent == nil:
		return nil, nil, fmt.Errorf("%w: the signature is detached; the content must be given", ErrNoContent)
	case !p.info.Detached && detachedContent != nil:
		if !bytes.Equal(p.info.Content, detachedContent) {
			return nil, nil, fmt.Errorf("%w: the given content differs from the encapsulated content", ErrSignature)
		}
		content = p.info.Content
	case p.info.Detached:
		content = detachedContent
	default:
		content = p.info.Content
	}
	for i, si := range p.sd.SignerInfos {
		cert := p.signerCert(si)
		if cert == nil {
			return nil, nil, fmt.Errorf("%w: signer %d: certificate not embedded", ErrMalformed, i+1)
		}
		if err := p.verifySigner(si, cert, content); err != nil {
			return nil, nil, fmt.Errorf("signer %d: %w", i+1, err)
		}
		if i == 0 {
			signer = cert
		}
	}
	if at.IsZero() {
		at = time.Now()
	}
	if roots == nil {
		return content, signer, fmt.Errorf("%w: no trust anchors given", ErrUntrusted)
	}
	intermediates := x509.NewCertPool()
	for _, c := range p.certs {
		intermediates.AddCert(c)
	}
	for i, si := range p.sd.SignerInfos {
		cert := p.signerCert(si)
		if _, err := cert.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: intermediates,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			return content, signer, fmt.Errorf("%w: signer %d: %v", ErrUntrusted, i+1, err)
		}
	}
	return content, signer, nil
}

func (p *parsed) verifySigner(si signerInfo, cert *x509.Certificate, content []byte) error {
	h, err := hashFor(si.DigestAlgorithm.Algorithm)
	if err != nil {
		return err
	}
	signedBytes := content
	if len(si.SignedAttrs.FullBytes) > 0 {
		attrs, err := parseAttributes(si.SignedAttrs)
		if err != nil {
			return fmt.Errorf("%w: signed attributes: %v", ErrMalformed, err)
		}
		var ct asn1.ObjectIdentifier
		if v, ok := attrs[oidAttrContentType.String()]; !ok {
			return fmt.Errorf("%w: content-type attribute missing", ErrMalformed)
		} else if _, err := asn1.Unmarshal(v, &ct); err != nil || !ct.Equal(p.sd.EncapContentInfo.EContentType) {
			return fmt.Errorf("%w: content-type attribute does not match the content", ErrSignature)
		}
		var md []byte
		v, ok := attrs[oidAttrMessageDigest.String()]
		if !ok {
			return fmt.Errorf("%w: message-digest attribute missing", ErrMalformed)
		}
		if _, err := asn1.Unmarshal(v, &md); err != nil {
			return fmt.Errorf("%w: message-digest attribute: %v", ErrMalformed, err)
		}
		d := h.New()
		d.Write(content)
		if !bytes.Equal(d.Sum(nil), md) {
			return fmt.Errorf("%w: the content's digest differs from the signed message-digest", ErrSignature)
		}
		if v, ok := attrs[oidAttrSigningCertV2.String()]; ok {
			if err := checkSigningCertificate(v, cert); err != nil {
				return err
			}
		}
		// The attributes were signed as a universal SET, not as the [0] they travel in.
		signedBytes = append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	}
	return checkSignature(si, cert, signedBytes)
}

func checkSigningCertificate(v []byte, cert *x509.Certificate) error {
	var sc struct {
		Certs []essCertIDv2
	}
	if _, err := asn1.Unmarshal(v, &sc); err != nil || len(sc.Certs) == 0 {
		return fmt.Errorf("%w: signing-certificate-v2 attribute", ErrMalformed)
	}
	first := sc.Certs[0]
	alg := first.HashAlgorithm.Algorithm
	if len(alg) == 0 {
		alg = oidSHA256
	}
	h, err := hashFor(alg)
	if err != nil {
		return err
	}
	d := h.New()
	d.Write(cert.Raw)
	if !bytes.Equal(d.Sum(nil), first.CertHash) {
		return fmt.Errorf("%w: signing-certificate-v2 names another certificate", ErrSignature)
	}
	return nil
}

func checkSignature(si signerInfo, cert *x509.Certificate, signed []byte) error {
	alg := si.SignatureAlgorithm.Algorithm
	digestHash, err := hashFor(si.DigestAlgorithm.Algorithm)
	if err != nil {
		return err
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		h := digestHash
		switch {
		case alg.Equal(oidECDSAWithSHA256):
			h = crypto.SHA256
		case alg.Equal(oidECDSAWithSHA384):
			h = crypto.SHA384
		case alg.Equal(oidECDSAWithSHA512):
			h = crypto.SHA512
		case alg.Equal(oidECPublicKey):
		default:
			return fmt.Errorf("%w: signature algorithm %s with an EC key", ErrMalformed, alg)
		}
		if !ecdsa.VerifyASN1(pub, sum(h, signed), si.Signature) {
			return fmt.Errorf("%w: ECDSA signature value", ErrSignature)
		}
		return nil
	case *rsa.PublicKey:
		switch {
		case alg.Equal(oidRSASSAPSS):
			var params pssParameters
			if _, err := asn1.Unmarshal(si.SignatureAlgorithm.Parameters.FullBytes, &params); err != nil {
				return fmt.Errorf("%w: RSASSA-PSS parameters: %v", ErrMalformed, err)
			}
			if len(params.Hash.Algorithm) == 0 {
				return fmt.Errorf("%w: RSASSA-PSS with SHA-1 is not accepted", ErrMalformed)
			}
			h, err := hashFor(params.Hash.Algorithm)
			if err != nil {
				return err
			}
			if err := rsa.VerifyPSS(pub, h, sum(h, signed), si.Signature, &rsa.PSSOptions{SaltLength: params.SaltLength, Hash: h}); err != nil {
				return fmt.Errorf("%w: RSASSA-PSS signature value", ErrSignature)
			}
			return nil
		case alg.Equal(oidRSAEncryption), alg.Equal(oidSHA256WithRSA), alg.Equal(oidSHA384WithRSA), alg.Equal(oidSHA512WithRSA):
			h := digestHash
			switch {
			case alg.Equal(oidSHA256WithRSA):
				h = crypto.SHA256
			case alg.Equal(oidSHA384WithRSA):
				h = crypto.SHA384
			case alg.Equal(oidSHA512WithRSA):
				h = crypto.SHA512
			}
			if err := rsa.VerifyPKCS1v15(pub, h, sum(h, signed), si.Signature); err != nil {
				return fmt.Errorf("%w: RSA signature value", ErrSignature)
			}
			return nil
		default:
			return fmt.Errorf("%w: signature algorithm %s with an RSA key", ErrMalformed, alg)
		}
	default:
		return fmt.Errorf("%w: unsupported public key %T", ErrMalformed, cert.PublicKey)
	}
}

func hashFor(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: digest algorithm %s not supported", ErrMalformed, oid)
}

func sum(h crypto.Hash, data []byte) []byte {
	var d hash.Hash
	switch h {
	case crypto.SHA384:
		d = sha512.New384()
	case crypto.SHA512:
		d = sha512.New()
	default:
		d = sha256.New()
	}
	d.Write(data)
	return d.Sum(nil)
}
