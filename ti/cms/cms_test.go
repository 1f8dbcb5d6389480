package cms_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/simpki"
)

// qesSamples are real CAdES signatures of three Konnektor vendors (gematik's api-erp samples,
// Apache-2.0, see testdata/gematik/NOTICE).
const qesSamples = "testdata/gematik/api-erp/samples/qes/signed"

var signingTime = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func issue(t testing.TB, p *simpki.PKI, cn string) *simpki.Identity {
	t.Helper()
	id, err := p.Issue(cn, simpki.WithUsage(simpki.UsageQES), simpki.WithICCSN("80276883110000177001"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSignVerify(t *testing.T) {
	p, err := simpki.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := simpki.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := issue(t, p, "Dr. med. Hanna Berger TEST-ONLY")
	content := []byte(`<Bundle xmlns="http://hl7.org/fhir"><id value="1"/></Bundle>`)
	at := time.Now()

	enveloping, err := cms.Sign(content, id.Certificate, id.Key, false, signingTime)
	if err != nil {
		t.Fatal(err)
	}
	detached, err := cms.Sign(content, id.Certificate, id.Key, true, signingTime)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(enveloping, []byte(`value="1"`), []byte(`value="2"`), 1)
	if bytes.Equal(tampered, enveloping) {
		t.Fatal("test content not found in the signature")
	}

	for _, tc := range []struct {
		name     string
		sig      []byte
		detached []byte
		roots    *x509.CertPool
		want     error
	}{
		{name: "verifies an enveloping signature", sig: enveloping, roots: p.Pool()},
		{name: "verifies a detached signature with its content", sig: detached, detached: content, roots: p.Pool()},
		{name: "verifies an enveloping signature given the same content", sig: enveloping, detached: content, roots: p.Pool()},
		{name: "rejects tampered content", sig: tampered, roots: p.Pool(), want: cms.ErrSignature},
		{name: "rejects a detached signature over other content", sig: detached, detached: []byte("other"), roots: p.Pool(), want: cms.ErrSignature},
		{name: "rejects an enveloping signature given other content", sig: enveloping, detached: []byte("other"), roots: p.Pool(), want: cms.ErrSignature},
		{name: "rejects a detached signature without content", sig: detached, roots: p.Pool(), want: cms.ErrNoContent},
		{name: "rejects a signer from another root", sig: enveloping, roots: other.Pool(), want: cms.ErrUntrusted},
		{name: "rejects missing trust anchors", sig: enveloping, want: cms.ErrUntrusted},
		{name: "rejects garbage", sig: []byte("not CMS"), roots: p.Pool(), want: cms.ErrMalformed},
		{name: "rejects a truncated structure", sig: enveloping[:len(enveloping)/2], roots: p.Pool(), want: cms.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, signer, err := cms.Verify(tc.sig, tc.detached, tc.roots, at)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("content %q", got)
			}
			if !signer.Equal(id.Certificate) {
				t.Errorf("signer %s", signer.Subject)
			}
		})
	}

	t.Run("records signing time and content", func(t *testing.T) {
		info, err := cms.Inspect(enveloping)
		if err != nil {
			t.Fatal(err)
		}
		if !info.SigningTime.Equal(signingTime) || info.Detached || !bytes.Equal(info.Content, content) || !info.Signer.Equal(id.Certificate) {
			t.Errorf("info %+v", info)
		}
		info, err = cms.Inspect(detached)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Detached || info.Content != nil {
			t.Errorf("detached info %+v", info)
		}
	})
	t.Run("rejects a signer outside its validity", func(t *testing.T) {
		_, _, err := cms.Verify(enveloping, nil, p.Pool(), id.Certificate.NotAfter.Add(time.Hour))
		if !errors.Is(err, cms.ErrUntrusted) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("refuses a key that is not the certificate's", func(t *testing.T) {
		other := issue(t, other, "Someone Else")
		if _, err := cms.Sign(content, id.Certificate, other.Key, false, signingTime); err == nil {
			t.Error("no error")
		}
	})
}

// TestRSAPSS signs with an RSA key, as HBAs with RSA keys do (RSASSA-PSS).
func TestRSAPSS(t *testing.T) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "rsa signer"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageContentCommitment}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	sig, err := cms.Sign([]byte("content"), leaf, crypto.Signer(key), false, signingTime)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, _, err := cms.Verify(sig, nil, pool, time.Now()); err != nil {
		t.Error(err)
	}
}

// TestVendorSignatures checks real QES signatures (BER, RSASSA-PSS, OCSP responses inside):
// the signature values verify, and their gematik test CA is not a trust anchor here.
func TestVendorSignatures(t *testing.T) {
	files := fixture.Glob(t, filepath.Join(qesSamples, "*.p7"))
	p, err := simpki.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			der := fixture.Read(t, f)
			info, err := cms.Inspect(der)
			if err != nil {
				t.Fatal(err)
			}
			if info.Detached || !bytes.HasPrefix(info.Content, []byte("<Bundle")) || info.SigningTime.Year() != 2021 || info.Signer == nil {
				t.Errorf("info: detached %v, content %.20q, signing time %v", info.Detached, info.Content, info.SigningTime)
			}
			content, signer, err := cms.Verify(der, nil, p.Pool(), info.SigningTime)
			if !errors.Is(err, cms.ErrUntrusted) {
				t.Fatalf("error %v, want ErrUntrusted (valid signature, foreign CA)", err)
			}
			if !bytes.Equal(content, info.Content) || signer == nil || signer.Subject.SerialNumber != "80276883110000095767" {
				t.Errorf("signer %v", signer)
			}
			bad := append([]byte(nil), der...)
			i := bytes.Index(bad, []byte("Bundle"))
			bad[i] = 'b'
			if _, _, err := cms.Verify(bad, nil, p.Pool(), info.SigningTime); !errors.Is(err, cms.ErrSignature) {
				t.Errorf("tampered: error %v, want ErrSignature", err)
			}
		})
	}
}
