package vault_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/redclone/red/internal/vault"
)

// token returns vault.Token(v, index, value) or fails the test.
func token(tb testing.TB, v *vault.Vault, index, value string) []byte {
	tb.Helper()
	tok, err := vault.Token(v, index, value)
	if err != nil {
		tb.Fatalf("Token(%q, %q): %v", index, value, err)
	}
	return tok
}

// idToken returns vault.IDToken(v, typ, id) or fails the test.
func idToken(tb testing.TB, v *vault.Vault, typ, id string) []byte {
	tb.Helper()
	tok, err := vault.IDToken(v, typ, id)
	if err != nil {
		tb.Fatalf("IDToken(%q, %q): %v", typ, id, err)
	}
	return tok
}

func TestToken(t *testing.T) {
	blobA := newCredential(t, 1, tenantA, user, password)
	a := unsealed(t, tenantA, blobA)
	a2 := unsealed(t, tenantA, blobA) // same keyring, another workstation
	b := unsealed(t, tenantB, newCredential(t, 2, tenantB, user, password))

	base := token(t, a, "family", "mustermann")
	if len(base) != 16 {
		t.Fatalf("len(token) = %d, want 16", len(base))
	}

	equal := []struct {
		name  string
		token []byte
	}{
		{"is deterministic", token(t, a, "family", "mustermann")},
		{"is the same on another vault with the same keyring", token(t, a2, "family", "mustermann")},
	}
	for _, tt := range equal {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.token, base) {
				t.Errorf("token = %x, want %x", tt.token, base)
			}
		})
	}

	differ := []struct {
		name  string
		token []byte
	}{
		{"differs for another value", token(t, a, "family", "musterman")},
		{"differs for another index", token(t, a, "given", "mustermann")},
		{"differs for another tenant keyring", token(t, b, "family", "mustermann")},
		{"differs for an id token of the same name", idToken(t, a, "family", "mustermann")},
		{"differs when index and value shift a byte", token(t, a, "familym", "ustermann")},
	}
	for _, tt := range differ {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.token, base) {
				t.Errorf("token = %x, same as the base token", tt.token)
			}
			if bytes.Contains(tt.token, []byte("muster")) {
				t.Error("token contains the value")
			}
		})
	}

	t.Run("does not alias its result", func(t *testing.T) {
		tok := token(t, a, "family", "mustermann")
		if cap(tok) != len(tok) {
			t.Errorf("cap(token) = %d, want %d", cap(tok), len(tok))
		}
	})
}

func TestIDToken(t *testing.T) {
	a := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	b := unsealed(t, tenantB, newCredential(t, 2, tenantB, user, password))
	base := idToken(t, a, "Patient", "p1")
	tests := []struct {
		name  string
		token []byte
		same  bool
	}{
		{"is deterministic", idToken(t, a, "Patient", "p1"), true},
		{"differs for another id", idToken(t, a, "Patient", "p2"), false},
		{"differs for another type", idToken(t, a, "Practitioner", "p1"), false},
		{"differs for another tenant keyring", idToken(t, b, "Patient", "p1"), false},
		{"differs from a search token of the same name", token(t, a, "Patient", "p1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(tt.token, base); got != tt.same {
				t.Errorf("token %x equal to %x: %v, want %v", tt.token, base, got, tt.same)
			}
		})
	}
}

// digest returns the barrier's Digest over v of secret for purpose, or fails the test.
func digest(tb testing.TB, v *vault.Vault, purpose, secret string) []byte {
	tb.Helper()
	d, err := v.Barrier(nil).Digest(purpose, secret)
	if err != nil {
		tb.Fatalf("Digest(%q): %v", purpose, err)
	}
	return d
}

func TestDigest(t *testing.T) {
	blobA := newCredential(t, 1, tenantA, user, password)
	a := unsealed(t, tenantA, blobA)
	b := unsealed(t, tenantB, newCredential(t, 2, tenantB, user, password))
	base := digest(t, a, "red:token", "red_s3cret")
	if len(base) != 32 {
		t.Fatalf("len(digest) = %d, want the whole HMAC-SHA256", len(base))
	}
	for _, tt := range []struct {
		name   string
		digest []byte
		same   bool
	}{
		{"is deterministic", digest(t, a, "red:token", "red_s3cret"), true},
		{"is the same on another vault with the same keyring", digest(t, unsealed(t, tenantA, blobA), "red:token", "red_s3cret"), true},
		{"differs for another secret", digest(t, a, "red:token", "red_s3cres"), false},
		{"differs for another purpose", digest(t, a, "red:other", "red_s3cret"), false},
		{"differs for another tenant keyring", digest(t, b, "red:token", "red_s3cret"), false},
		{"differs from the blind token of the same name and value", token(t, a, "red:token", "red_s3cret"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(tt.digest, base[:len(tt.digest)]); got != tt.same { // a blind token is a prefix's length
				t.Errorf("digest %x equal to %x: %v, want %v", tt.digest, base, got, tt.same)
			}
		})
	}
	t.Run("is refused while sealed", func(t *testing.T) {
		if _, err := vault.New(tenantA, nil).Barrier(nil).Digest("red:token", "red_s3cret"); !errors.Is(err, vault.ErrSealed) {
			t.Errorf("Digest = %v, want ErrSealed", err)
		}
	})
}

func TestTokenKeyCacheIsBounded(t *testing.T) {
	v := unsealed(t, tenantA, newCredential(t, 1, tenantA, user, password))
	first := idToken(t, v, "Type0", "x")
	for i := range 1000 {
		idToken(t, v, "Type"+strings.Repeat("x", i), "x")
	}
	if n := len(vault.KeyBytes(v)); n > 2+256 {
		t.Errorf("vault holds %d keys after 1000 index names, want the cache bounded", n)
	}
	if got := idToken(t, v, "Type0", "x"); !bytes.Equal(got, first) {
		t.Errorf("token changed once the cache is full: %x, want %x", got, first)
	}
	uncached := idToken(t, v, "Type-not-cached", "x")
	if again := idToken(t, v, "Type-not-cached", "x"); !bytes.Equal(again, uncached) {
		t.Errorf("uncached token not deterministic: %x then %x", uncached, again)
	}
}

func TestSealString(t *testing.T) {
	blob := newCredential(t, 1, tenantA, user, password)
	v := unsealed(t, tenantA, blob)
	const params = "family=Mustermann&birthdate=1964-08-12&_count=10&offset=20"
	sealed, err := vault.SealString(v, "paging", params)
	if err != nil {
		t.Fatalf("SealString: %v", err)
	}

	t.Run("round trips", func(t *testing.T) {
		got, err := vault.OpenString(v, "paging", sealed)
		if err != nil || got != params {
			t.Errorf("OpenString = %q, %v; want %q", got, err, params)
		}
	})
	t.Run("round trips an empty string", func(t *testing.T) {
		s, err := vault.SealString(v, "paging", "")
		if err != nil {
			t.Fatalf("SealString: %v", err)
		}
		if got, err := vault.OpenString(v, "paging", s); err != nil || got != "" {
			t.Errorf("OpenString = %q, %v; want empty", got, err)
		}
	})
	t.Run("is URL-safe", func(t *testing.T) {
		if esc := url.QueryEscape(sealed); esc != sealed {
			t.Errorf("sealed string needs escaping: %q", sealed)
		}
		if strings.ContainsAny(sealed, "+/=") {
			t.Errorf("sealed string %q is not unpadded URL-safe base64", sealed)
		}
	})
	t.Run("hides the plaintext", func(t *testing.T) {
		if strings.Contains(sealed, "Mustermann") || strings.Contains(sealed, "family") {
			t.Errorf("sealed string %q shows the plaintext", sealed)
		}
	})
	t.Run("differs each time", func(t *testing.T) {
		again, _ := vault.SealString(v, "paging", params)
		if again == sealed {
			t.Error("two seals of the same string are identical")
		}
	})
	t.Run("opens on another vault with the same keyring", func(t *testing.T) {
		w := unsealed(t, tenantA, blob)
		if got, err := vault.OpenString(w, "paging", sealed); err != nil || got != params {
			t.Errorf("OpenString = %q, %v; want %q", got, err, params)
		}
	})

	recordSealed := seal(t, v, "paging", nil, 0, []byte(params))
	// A one-byte plaintext seals to 46 bytes, whose last base64 character carries 4 unused bits;
	// flipping the lowest of them leaves the decoded bytes unchanged.
	short, err := vault.SealString(v, "paging", "x")
	if err != nil {
		t.Fatalf("SealString: %v", err)
	}
	if got, err := vault.OpenString(v, "paging", short); err != nil || got != "x" {
		t.Fatalf("OpenString = %q, %v; want \"x\"", got, err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, short[len(short)-1])
	oddBits := short[:len(short)-1] + string(alphabet[last^1])
	otherTenant := unsealed(t, tenantB, newCredential(t, 2, tenantB, user, password))
	tests := []struct {
		name    string
		v       *vault.Vault
		purpose string
		sealed  string
	}{
		{"refuses a wrong purpose", v, "export", sealed},
		{"refuses a purpose sharing a prefix", v, "pagin", sealed},
		{"refuses another tenant", otherTenant, "paging", sealed},
		{"refuses a changed character", v, "paging", sealed[:20] + flipChar(sealed[20]) + sealed[21:]},
		{"refuses a truncated string", v, "paging", sealed[:len(sealed)-2]},
		{"refuses the empty string", v, "paging", ""},
		{"refuses invalid base64", v, "paging", "not*base64!"},
		{"refuses padded base64", v, "paging", sealed + "=="},
		{"refuses a record seal presented as a string", v, "paging", encode(recordSealed)},
		{"refuses a line break inside", v, "paging", sealed[:40] + "\n" + sealed[40:]},
		{"refuses a carriage return at the end", v, "paging", sealed + "\r"},
		{"refuses nonzero unused bits in the last character", v, "paging", oddBits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vault.OpenString(tt.v, tt.purpose, tt.sealed)
			if !errors.Is(err, vault.ErrTampered) || got != "" {
				t.Errorf("OpenString = %q, %v; want ErrTampered", got, err)
			}
		})
	}
}

// flipChar returns another base64url character.
func flipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// encode is the encoding SealString uses.
func encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
