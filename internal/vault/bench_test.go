package vault_test

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/redclone/red/internal/vault"
)

// resource2KiB is a 2 KiB plaintext, the size of a typical stored resource.
var resource2KiB = bytes.Repeat([]byte("<Patient>0123456789abcdef</Patient>"), 60)[:2048]

// benchVault returns an unsealed vault using crypto/rand, as in production.
func benchVault(tb testing.TB) *vault.Vault {
	tb.Helper()
	blob, err := vault.NewCredential(rand.Reader, tenantA, user, []byte(password), vault.TestKDF)
	if err != nil {
		tb.Fatal(err)
	}
	v := vault.New(tenantA, rand.Reader)
	if err := v.Unseal(user, blob, []byte(password)); err != nil {
		tb.Fatal(err)
	}
	return v
}

func BenchmarkSeal(b *testing.B) {
	v := benchVault(b)
	id := []byte("0123456789abcdef")
	b.SetBytes(int64(len(resource2KiB)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vault.Seal(v, "Patient", id, 1, resource2KiB); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	v := benchVault(b)
	id := []byte("0123456789abcdef")
	sealed, err := vault.Seal(v, "Patient", id, 1, resource2KiB)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(resource2KiB)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vault.Open(v, "Patient", id, 1, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToken(b *testing.B) {
	v := benchVault(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vault.Token(v, "family", "mustermann"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnsealDefaultKDF(b *testing.B) {
	blob, err := vault.NewCredential(rand.Reader, tenantA, user, []byte(password), vault.DefaultKDF)
	if err != nil {
		b.Fatal(err)
	}
	v := vault.New(tenantA, rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Unseal(user, blob, []byte(password)); err != nil {
			b.Fatal(err)
		}
	}
}
