package simpki_test

import (
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/simpki"
)

func TestLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := simpki.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("keeps the CA key private", func(t *testing.T) {
		for name, want := range map[string]os.FileMode{".": 0o700, "ca.pem": 0o600} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %o, want %o", name, got, want)
			}
		}
	})
	t.Run("creates a self-signed P-256 CA", func(t *testing.T) {
		ca := p.CACert()
		if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA || ca.CheckSignatureFrom(ca) != nil {
			t.Errorf("CA: IsCA %v, key %v", ca.IsCA, ca.PublicKeyAlgorithm)
		}
	})
	t.Run("loads the same CA again", func(t *testing.T) {
		again, err := simpki.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !again.CACert().Equal(p.CACert()) {
			t.Error("a second Load made a new CA")
		}
	})
	t.Run("refuses an empty directory name", func(t *testing.T) {
		if _, err := simpki.Load(""); err == nil {
			t.Error("no error")
		}
	})
}

func TestIssue(t *testing.T) {
	dir := t.TempDir()
	p, err := simpki.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := []simpki.Option{
		simpki.WithUsage(simpki.UsageQES),
		simpki.WithICCSN("80276883110000177001"),
		simpki.WithTelematikID("1-HBA-Testkarte-883110000177001"),
		simpki.WithProfession("Arzt", simpki.ProfessionArzt),
		simpki.WithName("Dr. med.", "Hanna", "Berger"),
	}
	id, err := p.Issue("Dr. med. Hanna Berger TEST-ONLY", opts...)
	if err != nil {
		t.Fatal(err)
	}
	cert := id.Certificate
	t.Run("chains to the CA pool", func(t *testing.T) {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Error(err)
		}
	})
	t.Run("carries holder, ICCSN and Telematik-ID", func(t *testing.T) {
		if cert.Subject.CommonName != "Dr. med. Hanna Berger TEST-ONLY" || cert.Subject.SerialNumber != "80276883110000177001" {
			t.Errorf("subject %s", cert.Subject)
		}
		want, _ := new(big.Int).SetString("8027688311000017700104", 10)
		if cert.SerialNumber.Cmp(want) != 0 {
			t.Errorf("serial %s, want %s (ICCSN·100 + 4 for C.QES)", cert.SerialNumber, want)
		}
		a, ok := admission.Of(cert)
		if !ok || a.RegistrationNumber != "1-HBA-Testkarte-883110000177001" || len(a.ProfessionOIDs) != 1 || a.ProfessionOIDs[0] != simpki.ProfessionArzt {
			t.Errorf("admission %+v", a)
		}
		if cert.KeyUsage != x509.KeyUsageContentCommitment {
			t.Errorf("key usage %v", cert.KeyUsage)
		}
		if !id.Key.PublicKey.Equal(cert.PublicKey) {
			t.Error("key does not match certificate")
		}
	})
	t.Run("returns the same identity after reload", func(t *testing.T) {
		again, err := simpki.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := again.Issue("Dr. med. Hanna Berger TEST-ONLY", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if !id2.Certificate.Equal(cert) {
			t.Error("a new certificate was issued")
		}
		other, err := again.Issue("Dr. med. Hanna Berger TEST-ONLY", append(opts, simpki.WithUsage(simpki.UsageAUT))...)
		if err != nil {
			t.Fatal(err)
		}
		if other.Certificate.Equal(cert) || other.Certificate.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			t.Error("another usage got the same certificate or serial")
		}
	})
	t.Run("keeps identity files private", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(dir, "identities", "*.pem"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no identity files: %v", err)
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %o", f, fi.Mode().Perm())
			}
		}
	})
}

func TestIssueRefuses(t *testing.T) {
	p, err := simpki.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cn   string
		opts []simpki.Option
	}{
		"refuses an empty common name":       {cn: " "},
		"refuses an ICCSN with letters":      {cn: "x", opts: []simpki.Option{simpki.WithICCSN("8027A")}},
		"refuses an unknown usage":           {cn: "x", opts: []simpki.Option{simpki.WithUsage("C.XYZ")}},
		"refuses a Telematik-ID with umlaut": {cn: "x", opts: []simpki.Option{simpki.WithTelematikID("1-Ärztin")}},
		"refuses a malformed profession OID": {cn: "x", opts: []simpki.Option{simpki.WithProfession("Arzt", "1.2.x")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Issue(tc.cn, tc.opts...); err == nil {
				t.Error("no error")
			}
		})
	}
}
