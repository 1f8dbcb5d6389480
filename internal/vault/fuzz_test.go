package vault_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/redclone/red/internal/vault"
)

// FuzzOpen feeds arbitrary bytes and bindings to Open and OpenString: they must never panic,
// and anything but the genuine ciphertext with its own bindings must fail with ErrTampered.
func FuzzOpen(f *testing.F) {
	v := unsealed(f, tenantA, newCredential(f, 1, tenantA, user, password))
	genuine := seal(f, v, "Patient", []byte("p1"), 1, patientXML)
	genuineString, err := vault.SealString(v, "paging", "family=Mustermann")
	if err != nil {
		f.Fatalf("SealString: %v", err)
	}
	f.Add("Patient", []byte("p1"), int64(1), genuine)
	f.Add("Patient", []byte("p2"), int64(1), genuine)
	f.Add("paging", []byte(nil), int64(0), []byte(genuineString))
	f.Add("", []byte{}, int64(-1), []byte{})
	f.Add("Patient", []byte("p1"), int64(1), genuine[:29])
	f.Add("Patient", []byte("p1"), int64(1), append([]byte{1, 0, 0, 0, 9}, genuine[5:]...))

	f.Fuzz(func(t *testing.T, typ string, id []byte, version int64, sealed []byte) {
		isGenuine := typ == "Patient" && bytes.Equal(id, []byte("p1")) && version == 1 && bytes.Equal(sealed, genuine)
		got, err := vault.Open(v, typ, id, version, sealed)
		switch {
		case isGenuine && (err != nil || !bytes.Equal(got, patientXML)):
			t.Errorf("genuine ciphertext: Open = %q, %v", got, err)
		case !isGenuine && !errors.Is(err, vault.ErrTampered):
			t.Errorf("Open err = %v, want ErrTampered", err)
		}

		isGenuineString := typ == "paging" && string(sealed) == genuineString
		s, err := vault.OpenString(v, typ, string(sealed))
		switch {
		case isGenuineString && err != nil:
			t.Errorf("genuine string: OpenString = %q, %v", s, err)
		case !isGenuineString && !errors.Is(err, vault.ErrTampered):
			t.Errorf("OpenString err = %v, want ErrTampered", err)
		}
	})
}

// FuzzParse feeds arbitrary bytes to the credential and keyring decoders (without running the
// KDF, so the fuzzer cannot stall on expensive parameters): they must never panic.
func FuzzParse(f *testing.F) {
	f.Add(newCredential(f, 1, tenantA, user, password))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 1, 0, 0, 0, 64, 1})
	keyring := append([]byte{1, 0, 0, 0, 1}, make([]byte, 32)...)
	keyring = append(keyring, 0, 1, 0, 0, 0, 1)
	f.Add(append(keyring, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = vault.ParseCredential(b)
		_ = vault.ParseKeyring(b)
	})
}

func TestParseKeyring(t *testing.T) {
	entry := func(id byte) []byte { return append([]byte{0, 0, 0, id}, make([]byte, 32)...) }
	keyring := func(format, current byte, entries ...[]byte) []byte {
		b := append([]byte{format, 0, 0, 0, current}, make([]byte, 32)...)
		b = append(b, 0, byte(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"accepts one key", keyring(1, 1, entry(1)), true},
		{"accepts a rotated keyring", keyring(1, 2, entry(1), entry(2)), true},
		{"refuses an unknown format", keyring(2, 1, entry(1)), false},
		{"refuses no keys", keyring(1, 1), false},
		{"refuses a current id without a key", keyring(1, 3, entry(1), entry(2)), false},
		{"refuses duplicate ids", keyring(1, 1, entry(1), entry(1)), false},
		{"refuses a truncated keyring", keyring(1, 1, entry(1))[:60], false},
		{"refuses trailing bytes", append(keyring(1, 1, entry(1)), 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := vault.ParseKeyring(tt.b); (err == nil) != tt.ok {
				t.Errorf("ParseKeyring err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
