package vault_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/redclone/red/internal/vault"
)

func TestRewrap(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	id := []byte("p1")
	sealed := seal(t, v, "Patient", id, 1, patientXML)
	token, _ := vault.Token(v, "family", "Mustermann")

	tests := []struct {
		name        string
		newUser     string
		newPassword string
	}{
		{"lets a new user open data sealed under the old user", "mfa.schulz", "another long password"},
		{"lets the same user open data with a new password", user, "a brand-new password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rewrapped, err := vault.Rewrap(rng(7), tenantA, user, blob, []byte(password), tt.newUser, []byte(tt.newPassword), vault.TestKDF)
			if err != nil {
				t.Fatalf("Rewrap: %v", err)
			}
			w := vault.New(tenantA, rng(8))
			if err := w.Unseal(tt.newUser, rewrapped, []byte(tt.newPassword)); err != nil {
				t.Fatalf("Unseal with the new credential: %v", err)
			}
			if got, err := vault.Open(w, "Patient", id, 1, sealed); err != nil || !bytes.Equal(got, patientXML) {
				t.Errorf("Open = %q, %v; want the plaintext", got, err)
			}
			if got, _ := vault.Token(w, "family", "Mustermann"); !bytes.Equal(got, token) {
				t.Errorf("Token = %x, want %x", got, token)
			}
			if err := w.Unseal(tt.newUser, rewrapped, []byte(password)); !errors.Is(err, vault.ErrBadPassword) {
				t.Errorf("Unseal with the old password: err = %v, want ErrBadPassword", err)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	sealed := seal(t, v, "Patient", []byte("p1"), 1, patientXML)
	blob, err := v.Wrap(rng(7), "mfa.schulz", []byte("her own password"), vault.TestKDF)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	t.Run("lets the new user open data sealed under the old one", func(t *testing.T) {
		w := vault.New(tenantA, rng(8))
		if err := w.Unseal("mfa.schulz", blob, []byte("her own password")); err != nil {
			t.Fatalf("Unseal: %v", err)
		}
		if got, err := vault.Open(w, "Patient", []byte("p1"), 1, sealed); err != nil || !bytes.Equal(got, patientXML) {
			t.Errorf("Open = %q, %v; want the plaintext", got, err)
		}
	})
	t.Run("binds the credential to the new user", func(t *testing.T) {
		if err := vault.New(tenantA, nil).Unseal(user, blob, []byte("her own password")); !errors.Is(err, vault.ErrBadPassword) {
			t.Errorf("Unseal as another user = %v, want ErrBadPassword", err)
		}
	})
	t.Run("refuses an empty password", func(t *testing.T) {
		if _, err := v.Wrap(nil, "mfa.schulz", nil, vault.TestKDF); err == nil {
			t.Error("Wrap with an empty password succeeded")
		}
	})
	t.Run("refuses while sealed", func(t *testing.T) {
		if _, err := vault.New(tenantA, nil).Wrap(nil, "mfa.schulz", []byte("pw"), vault.TestKDF); !errors.Is(err, vault.ErrSealed) {
			t.Errorf("Wrap = %v, want ErrSealed", err)
		}
	})
}

func TestRewrapRefuses(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	tests := []struct {
		name        string
		tenant      string
		user        string
		password    string
		newPassword string
		p           vault.KDFParams
		want        error // nil: any error
	}{
		{"refuses a wrong old password", tenantA, user, "guess", "new password", vault.TestKDF, vault.ErrBadPassword},
		{"refuses a wrong old user", tenantA, "someone", password, "new password", vault.TestKDF, vault.ErrBadPassword},
		{"refuses a wrong tenant", tenantB, user, password, "new password", vault.TestKDF, vault.ErrBadPassword},
		{"refuses an empty new password", tenantA, user, password, "", vault.TestKDF, nil},
		{"refuses zero KDF parameters", tenantA, user, password, "new password", vault.KDFParams{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vault.Rewrap(rng(7), tt.tenant, tt.user, blob, []byte(tt.password), "mfa", []byte(tt.newPassword), tt.p)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Rewrap err = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Rewrap returned a blob alongside the error")
			}
		})
	}
}

func TestNewCredential(t *testing.T) {
	t.Run("makes a different keyring each time", func(t *testing.T) {
		a := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
		b := unsealed(t, tenantA, newCredential(t, 2, tenantA, user, password))
		sealed := seal(t, a, "Patient", []byte("p1"), 1, patientXML)
		if _, err := vault.Open(b, "Patient", []byte("p1"), 1, sealed); !errors.Is(err, vault.ErrTampered) {
			t.Errorf("Open with another keyring: err = %v, want ErrTampered", err)
		}
	})
	t.Run("hides the password and keys", func(t *testing.T) {
		blob := newCredential(t, 1, tenantA, user, password)
		if bytes.Contains(blob, []byte(password)) {
			t.Error("blob contains the password")
		}
		v := unsealed(t, tenantA, blob)
		for i, k := range vault.KeyBytes(v) {
			if bytes.Contains(blob, k) {
				t.Errorf("blob contains key %d", i)
			}
		}
	})

	tests := []struct {
		name     string
		password string
		p        vault.KDFParams
	}{
		{"refuses an empty password", "", vault.TestKDF},
		{"refuses zero passes", password, vault.KDFParams{Time: 0, MemoryKiB: 64, Threads: 1}},
		{"refuses absurdly many passes", password, vault.KDFParams{Time: 1000, MemoryKiB: 64, Threads: 1}},
		{"refuses zero threads", password, vault.KDFParams{Time: 1, MemoryKiB: 64, Threads: 0}},
		{"refuses less memory than 8 KiB per thread", password, vault.KDFParams{Time: 1, MemoryKiB: 8, Threads: 2}},
		{"refuses more than 4 GiB of memory", password, vault.KDFParams{Time: 1, MemoryKiB: 4<<20 + 1, Threads: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob, err := vault.NewCredential(rng(1), tenantA, user, []byte(tt.password), tt.p)
			if err == nil || blob != nil {
				t.Errorf("NewCredential = %d bytes, %v; want an error", len(blob), err)
			}
		})
	}
}

func TestUnsealRefusesBrokenBlobs(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	with := func(change func(b []byte)) []byte {
		b := bytes.Clone(blob)
		change(b)
		return b
	}
	tests := []struct {
		name string
		blob []byte
		want error // nil: any error but ErrBadPassword
	}{
		{"refuses nil", nil, nil},
		{"refuses an empty blob", []byte{}, nil},
		{"refuses a single byte", []byte{1}, nil},
		{"refuses the header alone", blob[:27], nil},
		{"refuses header, salt and nonce without ciphertext", blob[:51], nil},
		{"refuses garbage", bytes.Repeat([]byte("garbage!"), 20), nil},
		{"refuses an unknown format", with(func(b []byte) { b[0] = 2 }), nil},
		{"refuses an unknown KDF", with(func(b []byte) { b[1] = 7 }), nil},
		{"refuses zero passes", with(func(b []byte) { binary.BigEndian.PutUint32(b[2:], 0) }), nil},
		{"refuses absurdly many passes", with(func(b []byte) { binary.BigEndian.PutUint32(b[2:], 1<<31) }), nil},
		{"refuses more than 4 GiB of memory", with(func(b []byte) { binary.BigEndian.PutUint32(b[6:], 0xffffffff) }), nil},
		{"refuses zero threads", with(func(b []byte) { b[10] = 0 }), nil},
		{"refuses changed parameters as a wrong password", with(func(b []byte) { binary.BigEndian.PutUint32(b[6:], 128) }), vault.ErrBadPassword},
		{"refuses a changed salt as a wrong password", with(func(b []byte) { b[12] ^= 1 }), vault.ErrBadPassword},
		{"refuses a flipped ciphertext byte as a wrong password", with(func(b []byte) { b[60] ^= 1 }), vault.ErrBadPassword},
		{"refuses a truncated ciphertext as a wrong password", blob[:len(blob)-1], vault.ErrBadPassword},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vault.New(tenantA, rng(1))
			err := v.Unseal(user, tt.blob, []byte(password))
			switch {
			case err == nil:
				t.Fatal("Unseal succeeded")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Unseal err = %v, want %v", err, tt.want)
			case tt.want == nil && errors.Is(err, vault.ErrBadPassword):
				t.Errorf("Unseal err = %v, want a malformed-credential error", err)
			}
			if !v.Sealed() {
				t.Error("vault unsealed after a failed Unseal")
			}
		})
	}
}

func TestUnsealFailureKeepsKeys(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	sealed := seal(t, v, "Patient", []byte("p1"), 1, patientXML)
	if err := v.Unseal(user, blob, []byte("wrong")); !errors.Is(err, vault.ErrBadPassword) {
		t.Fatalf("Unseal err = %v, want ErrBadPassword", err)
	}
	if _, err := vault.Open(v, "Patient", []byte("p1"), 1, sealed); err != nil {
		t.Errorf("Open after a failed re-Unseal: %v", err)
	}
}
