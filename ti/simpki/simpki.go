// Package simpki is the simulated Telematik-Infrastruktur PKI: one self-signed ECDSA P-256 CA,
// kept in a directory, that issues card certificates (HBA, SMC-B, eGK) with their own keys, so
// that the Konnektor simulator's signatures verify like real ones.
//
// Real cards use brainpoolP256r1 or RSA keys issued by gematik-approved CAs; Go's standard
// library does not support brainpool curves, so the simulator uses P-256 throughout.
package simpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/wire"
)

// Files and lifetimes.
const (
	caFile        = "ca.pem"     // CA certificate and key, 0600
	caCertFile    = "ca.crt"     // the CA certificate alone, for other tools
	identitiesDir = "identities" // one 0600 PEM file per issued identity
	caLifetime    = 20 * 365 * 24 * time.Hour
	cardLifetime  = 5 * 365 * 24 * time.Hour
	backdate      = 24 * time.Hour
)

// Profession OIDs (gemSpec_OID) used by the default cards.
const (
	ProfessionArzt                 = "1.2.276.0.76.4.30"
	ProfessionBetriebsstaetteArzt  = "1.2.276.0.76.4.50"
	ProfessionOeffentlicheApotheke = "1.2.276.0.76.4.54"
	ProfessionVersicherter         = "1.2.276.0.76.4.49"
)

// Usage names a card certificate by its gematik reference.
type Usage string

// The certificate references a card can hold.
const (
	UsageAUT Usage = "C.AUT" // authentication (C.HCI.AUT on an SMC-B, C.HP.AUT on an HBA, C.CH.AUT on an eGK)
	UsageENC Usage = "C.ENC" // encryption
	UsageSIG Usage = "C.SIG" // organisational signature (C.HCI.OSIG on an SMC-B)
	UsageQES Usage = "C.QES" // qualified electronic signature (HBA)
)

// usageCode makes certificate serial numbers unique per card: serial = ICCSN·100 + code.
var usageCode = map[Usage]int64{UsageAUT: 1, UsageENC: 2, UsageSIG: 3, UsageQES: 4}

// PKI is a loaded simulator CA. It is safe for concurrent use.
type PKI struct {
	dir   string
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	pool  *x509.CertPool
	mu    sync.Mutex
	cache map[string]*Identity
}

// Identity is an issued certificate with its private key.
type Identity struct {
	Certificate *x509.Certificate
	Key         *ecdsa.PrivateKey
}

// Load opens the CA kept in dir, creating dir (0700) and a new CA on first use. Nothing is
// written outside dir.
func Load(dir string) (*PKI, error) {
	if dir == "" {
		return nil, errors.New("simpki: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("simpki: %w", err)
	}
	p := &PKI{dir: dir, cache: map[string]*Identity{}}
	data, err := os.ReadFile(filepath.Join(dir, caFile))
	switch {
	case err == nil:
		ca, err := ParseIdentity(data)
		if err != nil {
			return nil, fmt.Errorf("simpki: %s: %w", caFile, err)
		}
		p.cert, p.key = ca.Certificate, ca.Key
	case errors.Is(err, os.ErrNotExist):
		if err := p.createCA(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("simpki: %w", err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.cert)
	return p, nil
}

func (p *PKI) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("simpki: CA key: %w", err)
	}
	now := time.Now()
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country:            []string{"DE"},
			Organization:       []string{"red simulator NOT-VALID"},
			OrganizationalUnit: []string{"Simulierte TI-CA"},
			CommonName:         "RED.SIM-CA1 TEST-ONLY",
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("simpki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("simpki: CA certificate: %w", err)
	}
	data, err := (&Identity{Certificate: cert, Key: key}).MarshalPEM()
	if err != nil {
		return err
	}
	if err := wire.WriteFile(filepath.Join(p.dir, caFile), data, 0o600); err != nil {
		return fmt.Errorf("simpki: %w", err)
	}
	if err := wire.WriteFile(filepath.Join(p.dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("simpki: %w", err)
	}
	p.cert, p.key = cert, key
	return nil
}

// CACert returns the CA certificate.
func (p *PKI) CACert() *x509.Certificate { return p.cert }

// Pool returns a pool holding only the CA certificate: the trust anchor for everything issued.
func (p *PKI) Pool() *x509.CertPool { return p.pool }

// request is what Issue was asked for; its JSON form names the persisted identity.
type request struct {
	CN           string   `json:"cn"`
	Usage        Usage    `json:"usage,omitempty"`
	ICCSN        string   `json:"iccsn,omitempty"`
	TelematikID  string   `json:"telematikId,omitempty"`
	Professions  []string `json:"professions,omitempty"` // item names
	ProfOIDs     []string `json:"professionOids,omitempty"`
	Organization string   `json:"organization,omitempty"`
	GivenName    string   `json:"givenName,omitempty"`
	Surname      string   `json:"surname,omitempty"`
	Title        string   `json:"title,omitempty"`
	KVNR         string   `json:"kvnr,omitempty"`
	IK           string   `json:"ik,omitempty"`
}

// Option adds a detail to an issued certificate.
type Option func(*request)

// WithUsage sets the certificate's purpose (key usages follow from it); default C.AUT.
func WithUsage(u Usage) Option { return func(r *request) { r.Usage = u } }

// WithICCSN sets the card's serial number: it becomes the subject's serialNumber and, times
// 100 plus a per-usage digit, the certificate's serial number.
func WithICCSN(iccsn string) Option { return func(r *request) { r.ICCSN = iccsn } }

// WithTelematikID puts the Telematik-ID into the admission extension as registrationNumber.
func WithTelematikID(id string) Option { return func(r *request) { r.TelematikID = id } }

// WithProfession adds a profession item and its OID to the admission extension.
func WithProfession(item, oid string) Option {
	return func(r *request) {
		r.Professions = append(r.Professions, item)
		r.ProfOIDs = append(r.ProfOIDs, oid)
	}
}

// WithOrganization sets the subject's organisation (the institution of an SMC-B).
func WithOrganization(o string) Option { return func(r *request) { r.Organization = o } }

// WithName sets the holder's title, given name and surname (HBA, eGK).
func WithName(title, given, surname string) Option {
	return func(r *request) { r.Title, r.GivenName, r.Surname = title, given, surname }
}

// WithInsurance records an insured person's KVNR and the insurer's IK as organisational units,
// as eGK certificates do.
func WithInsurance(kvnr, ik string) Option { return func(r *request) { r.KVNR, r.IK = kvnr, ik } }

// Issue returns a certificate for cn signed by the CA, with a fresh P-256 key. Issuing the same
// request again (also after Load on the same directory) returns the same identity while it is
// valid, so a card keeps its certificates across restarts.
func (p *PKI) Issue(cn string, opts ...Option) (*Identity, error) {
	if strings.TrimSpace(cn) == "" {
		return nil, errors.New("simpki: a certificate needs a common name")
	}
	r := request{CN: cn, Usage: UsageAUT}
	for _, o := range opts {
		o(&r)
	}
	if _, ok := usageCode[r.Usage]; !ok {
		return nil, fmt.Errorf("simpki: unknown usage %q", r.Usage)
	}
	if len(r.Professions) != len(r.ProfOIDs) {
		return nil, errors.New("simpki: profession items and OIDs differ in number")
	}
	keyJSON, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("simpki: %w", err)
	}
	sum := sha256.Sum256(keyJSON)
	name := hex.EncodeToString(sum[:12])

	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.cache[name]; ok && p.usable(id) {
		return id, nil
	}
	path := filepath.Join(p.dir, identitiesDir, name+".pem")
	if data, err := os.ReadFile(path); err == nil {
		if id, err := ParseIdentity(data); err == nil {
			if p.usable(id) {
				p.cache[name] = id
				return id, nil
			}
		}
	}
	id, err := p.issue(r)
	if err != nil {
		return nil, err
	}
	data, err := id.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(p.dir, identitiesDir), 0o700); err != nil {
		return nil, fmt.Errorf("simpki: %w", err)
	}
	if err := wire.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("simpki: %w", err)
	}
	p.cache[name] = id
	return id, nil
}

// usable reports whether a stored identity was issued by this CA and is valid for a while.
func (p *PKI) usable(id *Identity) bool {
	if !bytes.Equal(id.Certificate.RawIssuer, p.cert.RawSubject) || id.Certificate.CheckSignatureFrom(p.cert) != nil {
		return false
	}
	return time.Now().Add(30 * 24 * time.Hour).Before(id.Certificate.NotAfter)
}

func (p *PKI) issue(r request) (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("simpki: key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	if r.ICCSN != "" {
		n, ok := new(big.Int).SetString(r.ICCSN, 10)
		if !ok || n.Sign() <= 0 {
			return nil, fmt.Errorf("simpki: ICCSN %q is not a positive decimal number", r.ICCSN)
		}
		serial = n.Mul(n, big.NewInt(100))
		serial.Add(serial, big.NewInt(usageCode[r.Usage]))
	}
	subject := pkix.Name{Country: []string{"DE"}, CommonName: r.CN, SerialNumber: r.ICCSN}
	if r.Organization != "" {
		subject.Organization = []string{r.Organization}
	}
	if r.KVNR != "" {
		subject.OrganizationalUnit = append(subject.OrganizationalUnit, r.KVNR)
	}
	if r.IK != "" {
		subject.OrganizationalUnit = append(subject.OrganizationalUnit, r.IK)
	}
	for _, attr := range []struct {
		oid   asn1.ObjectIdentifier
		value string
	}{
		{asn1.ObjectIdentifier{2, 5, 4, 12}, r.Title},
		{asn1.ObjectIdentifier{2, 5, 4, 42}, r.GivenName},
		{asn1.ObjectIdentifier{2, 5, 4, 4}, r.Surname},
	} {
		if attr.value != "" {
			subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: attr.oid, Value: attr.value})
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(cardLifetime),
		BasicConstraintsValid: true,
	}
	switch r.Usage {
	case UsageAUT:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case UsageENC:
		tmpl.KeyUsage = x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment
	case UsageSIG:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	case UsageQES:
		tmpl.KeyUsage = x509.KeyUsageContentCommitment
	}
	if r.TelematikID != "" || len(r.Professions) > 0 {
		ext, err := admission.Admission{ProfessionItems: r.Professions, ProfessionOIDs: r.ProfOIDs, RegistrationNumber: r.TelematikID}.Marshal()
		if err != nil {
			return nil, fmt.Errorf("simpki: %w", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: admission.OID, Value: ext})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		return nil, fmt.Errorf("simpki: certificate for %q: %w", r.CN, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("simpki: certificate for %q: %w", r.CN, err)
	}
	return &Identity{Certificate: cert, Key: key}, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("simpki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// MarshalPEM encodes the certificate and its key (PKCS #8) as PEM, the form ParseIdentity reads.
func (id *Identity) MarshalPEM() ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("simpki: key: %w", err)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate.Raw}); err != nil {
		return nil, err
	}
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseIdentity reads a certificate and its ECDSA key from PEM blocks CERTIFICATE and PRIVATE
// KEY (PKCS #8), as MarshalPEM writes them; the key must belong to the certificate.
func ParseIdentity(data []byte) (*Identity, error) {
	var cert *x509.Certificate
	var key *ecdsa.PrivateKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, err
			}
			cert = c
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			ec, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("key is %T, not ECDSA", k)
			}
			key = ec
		}
	}
	if cert == nil || key == nil {
		return nil, errors.New("certificate or key missing")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("key does not match certificate")
	}
	return &Identity{Certificate: cert, Key: key}, nil
}
