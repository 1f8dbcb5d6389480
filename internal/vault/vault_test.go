package vault_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/redclone/red/internal/vault"
)

const (
	tenantA  = "praxis-mueller"
	tenantB  = "praxis-schmidt"
	user     = "dr.mueller"
	password = "correct horse battery staple"
)

// patientXML is person data as the vault would see it.
var patientXML = []byte(`<Patient xmlns="http://hl7.org/fhir"><name><family value="Mustermann"/>` +
	`<given value="Erika"/></name><birthDate value="1964-08-12"/></Patient>`)

// rng is a deterministic randomness source; different seeds give unrelated keyrings.
func rng(seed uint64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// newCredential makes a credential for (tenant, user, password) from seed.
func newCredential(tb testing.TB, seed uint64, tenant, user, password string) []byte {
	tb.Helper()
	blob, err := vault.NewCredential(rng(seed), tenant, user, []byte(password), vault.TestKDF)
	if err != nil {
		tb.Fatalf("NewCredential: %v", err)
	}
	return blob
}

// unsealed returns a vault for tenant unsealed with blob (made for user and password).
func unsealed(tb testing.TB, tenant string, blob []byte) *vault.Vault {
	tb.Helper()
	v := vault.New(tenant, rng(99))
	if err := v.Unseal(user, blob, []byte(password)); err != nil {
		tb.Fatalf("Unseal: %v", err)
	}
	return v
}

// seal seals plaintext or fails the test.
func seal(tb testing.TB, v *vault.Vault, typ string, id []byte, version int64, plaintext []byte) []byte {
	tb.Helper()
	sealed, err := vault.Seal(v, typ, id, version, plaintext)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return sealed
}

// operations calls every key-using operation once, for the sealed-vault tests.
var operations = []struct {
	name string
	call func(*vault.Vault) error
}{
	{"Seal", func(v *vault.Vault) error {
		_, err := vault.Seal(v, "Patient", []byte("id"), 1, patientXML)
		return err
	}},
	{"Open", func(v *vault.Vault) error {
		_, err := vault.Open(v, "Patient", []byte("id"), 1, make([]byte, 64))
		return err
	}},
	{"Open garbage", func(v *vault.Vault) error {
		_, err := vault.Open(v, "Patient", []byte("id"), 1, []byte("x"))
		return err
	}},
	{"Token", func(v *vault.Vault) error { _, err := vault.Token(v, "family", "Mustermann"); return err }},
	{"IDToken", func(v *vault.Vault) error { _, err := vault.IDToken(v, "Patient", "p1"); return err }},
	{"SealString", func(v *vault.Vault) error { _, err := vault.SealString(v, "paging", "name=x"); return err }},
	{"OpenString", func(v *vault.Vault) error { _, err := vault.OpenString(v, "paging", "AAAA"); return err }},
	{"OpenString garbage", func(v *vault.Vault) error { _, err := vault.OpenString(v, "paging", "!!"); return err }},
}

func TestNewVaultIsSealed(t *testing.T) {
	v := vault.New(tenantA, rng(1))
	if !v.Sealed() {
		t.Fatal("new vault is not sealed")
	}
	if got := v.Tenant(); got != tenantA {
		t.Errorf("Tenant() = %q, want %q", got, tenantA)
	}
	for _, op := range operations {
		t.Run(op.name+" returns ErrSealed", func(t *testing.T) {
			if err := op.call(v); !errors.Is(err, vault.ErrSealed) {
				t.Errorf("err = %v, want ErrSealed", err)
			}
		})
	}
}

func TestUnseal(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	tests := []struct {
		name     string
		tenant   string
		user     string
		password string
		want     error
	}{
		{"opens with the right user and password", tenantA, user, password, nil},
		{"refuses a wrong password", tenantA, user, "correct horse battery stapler", vault.ErrBadPassword},
		{"refuses a password prefix", tenantA, user, password[:len(password)-1], vault.ErrBadPassword},
		{"refuses an empty password", tenantA, user, "", vault.ErrBadPassword},
		{"refuses a wrong user", tenantA, "dr.schmidt", password, vault.ErrBadPassword},
		{"refuses a user name differing in case", tenantA, "Dr.Mueller", password, vault.ErrBadPassword},
		{"refuses the blob in another tenant", tenantB, user, password, vault.ErrBadPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vault.New(tt.tenant, rng(2))
			err := v.Unseal(tt.user, blob, []byte(tt.password))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Unseal err = %v, want %v", err, tt.want)
			}
			if sealed := v.Sealed(); sealed != (tt.want != nil) {
				t.Errorf("Sealed() = %v after Unseal err %v", sealed, err)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	id := []byte("id-token-of-p1")
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"round trips a resource", patientXML},
		{"round trips an empty plaintext", []byte{}},
		{"round trips binary data", bytes.Repeat([]byte{0, 0xff}, 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := seal(t, v, "Patient", id, 3, tt.plaintext)
			got, err := vault.Open(v, "Patient", id, 3, sealed)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}

	t.Run("hides the plaintext", func(t *testing.T) {
		sealed := seal(t, v, "Patient", id, 1, patientXML)
		if bytes.Equal(sealed, patientXML) {
			t.Fatal("sealed bytes equal the plaintext")
		}
		for _, part := range [][]byte{patientXML, []byte("Mustermann"), []byte("Erika"), []byte("1964")} {
			if bytes.Contains(sealed, part) {
				t.Errorf("sealed bytes contain %q", part)
			}
		}
		if want := 1 + 4 + 24 + 1 + len(patientXML) + 16; len(sealed) != want {
			t.Errorf("len(sealed) = %d, want %d (header, nonce, the empty user group's length, ciphertext, tag)", len(sealed), want)
		}
	})

	t.Run("differs each time the same plaintext is sealed", func(t *testing.T) {
		a := seal(t, v, "Patient", id, 1, patientXML)
		b := seal(t, v, "Patient", id, 1, patientXML)
		if bytes.Equal(a, b) {
			t.Error("two seals of the same plaintext are identical")
		}
		if bytes.Equal(a[5:29], b[5:29]) {
			t.Error("two seals share a nonce")
		}
	})
}

func TestOpenRefusesTampering(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	id := []byte("id-token-of-p1")
	sealed := seal(t, v, "Patient", id, 2, patientXML)

	sameKeysOtherTenant, err := vault.MoveToTenant(rng(3), tenantA, tenantB, user, blob, []byte(password), vault.TestKDF)
	if err != nil {
		t.Fatalf("MoveToTenant: %v", err)
	}
	otherTenant := unsealed(t, tenantB, sameKeysOtherTenant)
	otherKeyring := unsealed(t, tenantA, newCredential(t, 2, tenantA, user, password))

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		v       *vault.Vault
		typ     string
		id      []byte
		version int64
		sealed  []byte
	}{
		{"refuses a flipped format byte", v, "Patient", id, 2, flip(0)},
		{"refuses a flipped key id", v, "Patient", id, 2, flip(4)},
		{"refuses a flipped nonce byte", v, "Patient", id, 2, flip(10)},
		{"refuses a flipped ciphertext byte", v, "Patient", id, 2, flip(40)},
		{"refuses a flipped tag byte", v, "Patient", id, 2, flip(len(sealed) - 1)},
		{"refuses a row moved to another type", v, "Practitioner", id, 2, sealed},
		{"refuses a row moved to another id", v, "Patient", []byte("id-token-of-p2"), 2, sealed},
		{"refuses a row moved to an id sharing a prefix", v, "Patient", id[:len(id)-1], 2, sealed},
		{"refuses a row moved to another version", v, "Patient", id, 3, sealed},
		{"refuses a row moved to a negative version", v, "Patient", id, -2, sealed},
		{"refuses a row moved to another tenant with the same keys", otherTenant, "Patient", id, 2, sealed},
		{"refuses a row opened with another keyring", otherKeyring, "Patient", id, 2, sealed},
		{"refuses nil", v, "Patient", id, 2, nil},
		{"refuses the header alone", v, "Patient", id, 2, sealed[:5]},
		{"refuses header and nonce alone", v, "Patient", id, 2, sealed[:29]},
		{"refuses a ciphertext missing its last byte", v, "Patient", id, 2, sealed[:len(sealed)-1]},
		{"refuses a ciphertext with a byte appended", v, "Patient", id, 2, append(bytes.Clone(sealed), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vault.Open(tt.v, tt.typ, tt.id, tt.version, tt.sealed)
			if !errors.Is(err, vault.ErrTampered) {
				t.Errorf("Open err = %v, want ErrTampered", err)
			}
			if got != nil {
				t.Errorf("Open returned %d bytes alongside the error", len(got))
			}
		})
	}
}

func TestLock(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	id := []byte("p1")
	sealed := seal(t, v, "Patient", id, 1, patientXML)
	token, err := vault.Token(v, "family", "Mustermann")
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	keys := vault.KeyBytes(v)
	if len(keys) < 3 {
		t.Fatalf("KeyBytes returned %d keys, want data, index and a cached token key", len(keys))
	}

	v.Lock()

	t.Run("seals the vault", func(t *testing.T) {
		if !v.Sealed() {
			t.Error("Sealed() = false after Lock")
		}
	})
	t.Run("overwrites every key byte with zeros", func(t *testing.T) {
		for i, k := range keys {
			if !bytes.Equal(k, make([]byte, len(k))) {
				t.Errorf("key %d not wiped: %x", i, k)
			}
		}
	})
	for _, op := range operations {
		t.Run(op.name+" returns ErrSealed after Lock", func(t *testing.T) {
			if err := op.call(v); !errors.Is(err, vault.ErrSealed) {
				t.Errorf("err = %v, want ErrSealed", err)
			}
		})
	}
	t.Run("a second Lock is harmless", func(t *testing.T) {
		v.Lock()
		if !v.Sealed() {
			t.Error("Sealed() = false")
		}
	})
	t.Run("unseals again and still opens old ciphertext", func(t *testing.T) {
		if err := v.Unseal(user, blob, []byte(password)); err != nil {
			t.Fatalf("Unseal: %v", err)
		}
		got, err := vault.Open(v, "Patient", id, 1, sealed)
		if err != nil || !bytes.Equal(got, patientXML) {
			t.Fatalf("Open = %q, %v; want the plaintext", got, err)
		}
		again, err := vault.Token(v, "family", "Mustermann")
		if err != nil || !bytes.Equal(again, token) {
			t.Errorf("Token after re-Unseal = %x, %v; want %x", again, err, token)
		}
	})
}

func TestRotatedKeyring(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	id := []byte("p1")
	old := seal(t, v, "Patient", id, 1, patientXML)
	oldToken, _ := vault.Token(v, "family", "Mustermann")

	rotated, err := vault.Rotate(rng(5), tenantA, user, blob, []byte(password), vault.TestKDF)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	v = unsealed(t, tenantA, rotated)

	t.Run("opens ciphertext sealed under the old key", func(t *testing.T) {
		got, err := vault.Open(v, "Patient", id, 1, old)
		if err != nil || !bytes.Equal(got, patientXML) {
			t.Errorf("Open = %q, %v; want the plaintext", got, err)
		}
	})
	t.Run("seals under the new key id", func(t *testing.T) {
		fresh := seal(t, v, "Patient", id, 2, patientXML)
		if got := fresh[1:5]; !bytes.Equal(got, []byte{0, 0, 0, 2}) {
			t.Errorf("key id = %x, want 00000002", got)
		}
		if got, err := vault.Open(v, "Patient", id, 2, fresh); err != nil || !bytes.Equal(got, patientXML) {
			t.Errorf("Open = %q, %v; want the plaintext", got, err)
		}
	})
	t.Run("keeps blind-index tokens", func(t *testing.T) {
		if got, _ := vault.Token(v, "family", "Mustermann"); !bytes.Equal(got, oldToken) {
			t.Errorf("Token = %x, want %x", got, oldToken)
		}
	})
	t.Run("refuses a key id the keyring lacks", func(t *testing.T) {
		fresh := seal(t, v, "Patient", id, 2, patientXML)
		pre := unsealed(t, tenantA, blob)
		if _, err := vault.Open(pre, "Patient", id, 2, fresh); !errors.Is(err, vault.ErrTampered) {
			t.Errorf("Open err = %v, want ErrTampered", err)
		}
	})
}

func TestUnsealReplacesKeys(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	first := vault.KeyBytes(v)
	if err := v.Unseal(user, newCredential(t, 2, tenantA, user, password), []byte(password)); err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	for i, k := range first {
		if !bytes.Equal(k, make([]byte, len(k))) {
			t.Errorf("replaced key %d not wiped", i)
		}
	}
}

func TestFailingRandomness(t *testing.T) {
	broken := iotest.ErrReader(errors.New("entropy exhausted"))
	blob := newCredential(t, 1, tenantA, user, password)
	brokenVault := vault.New(tenantA, broken)
	if err := brokenVault.Unseal(user, blob, []byte(password)); err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"NewCredential reports it", func() error {
			_, err := vault.NewCredential(broken, tenantA, user, []byte(password), vault.TestKDF)
			return err
		}},
		{"Rewrap reports it", func() error {
			_, err := vault.Rewrap(broken, tenantA, user, blob, []byte(password), "mfa", []byte("pw"), vault.TestKDF)
			return err
		}},
		{"Seal reports it", func() error {
			_, err := vault.Seal(brokenVault, "Patient", []byte("p1"), 1, patientXML)
			return err
		}},
		{"SealString reports it", func() error {
			_, err := vault.SealString(brokenVault, "paging", "family=Mustermann")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || errors.Is(err, vault.ErrSealed) {
				t.Errorf("err = %v, want a randomness error", err)
			}
		})
	}
}

func TestConcurrentUseWhileLocking(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	id := []byte("p1")
	sealed := seal(t, v, "Patient", id, 1, patientXML)

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := vault.Seal(v, "Patient", id, 1, patientXML); err != nil && !errors.Is(err, vault.ErrSealed) {
					t.Errorf("Seal: %v", err)
					return
				}
				if got, err := vault.Open(v, "Patient", id, 1, sealed); err != nil && !errors.Is(err, vault.ErrSealed) {
					t.Errorf("Open: %v", err)
					return
				} else if err == nil && !bytes.Equal(got, patientXML) {
					t.Errorf("Open returned wrong plaintext")
					return
				}
				if _, err := vault.Token(v, "family", "Mustermann"); err != nil && !errors.Is(err, vault.ErrSealed) {
					t.Errorf("Token: %v", err)
					return
				}
			}
		})
	}
	for range 20 {
		v.Lock()
		if err := v.Unseal(user, blob, []byte(password)); err != nil {
			t.Fatalf("Unseal: %v", err)
		}
	}
	wg.Wait()
}
