package admission_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/redclone/red/ti/admission"
)

// certificate makes a self-signed certificate carrying the extension values given.
func certificate(t *testing.T, values ...[]byte) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	for _, v := range values {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: admission.OID, Value: v})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestRoundTrip(t *testing.T) {
	tests := []admission.Admission{
		{ProfessionItems: []string{"Betriebsstätte Arzt"}, ProfessionOIDs: []string{"1.2.276.0.76.4.50"}, RegistrationNumber: "1-SMC-B-Testkarte-883110000092397"},
		{ProfessionItems: []string{"Ärztin/Arzt", "Zahnärztin/Zahnarzt"}, ProfessionOIDs: []string{"1.2.276.0.76.4.30", "1.2.276.0.76.4.31"}},
		{ProfessionItems: []string{"Versicherter"}},
	}
	for _, want := range tests {
		value, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cert := certificate(t, value)
		got, ok := admission.Of(cert)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("read %+v, %v; want %+v", got, ok, want)
		}
		if id := admission.TelematikID(cert); id != want.RegistrationNumber {
			t.Errorf("TelematikID %q, want %q", id, want.RegistrationNumber)
		}
	}
}

func TestOfWithoutAdmission(t *testing.T) {
	for name, cert := range map[string]*x509.Certificate{
		"no extension":         certificate(t),
		"a broken extension":   certificate(t, []byte{0x30, 0x03, 0x01}),
		"an extension of junk": certificate(t, []byte{0x04, 0x01, 0x00}),
	} {
		if a, ok := admission.Of(cert); ok {
			t.Errorf("%s: read %+v", name, a)
		}
		if id := admission.TelematikID(cert); id != "" {
			t.Errorf("%s: TelematikID %q", name, id)
		}
	}
}

func TestMarshalRefuses(t *testing.T) {
	for name, a := range map[string]admission.Admission{
		"an OID with letters":           {ProfessionItems: []string{"x"}, ProfessionOIDs: []string{"1.2.x"}},
		"an OID of one arc":             {ProfessionItems: []string{"x"}, ProfessionOIDs: []string{"1"}},
		"an OID with a leading zero":    {ProfessionItems: []string{"x"}, ProfessionOIDs: []string{"1.02"}},
		"a Telematik-ID with an umlaut": {RegistrationNumber: "1-Ärztin"},
	} {
		if _, err := a.Marshal(); err == nil {
			t.Errorf("marshalled %s", name)
		}
	}
}
