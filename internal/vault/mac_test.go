package vault_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/redclone/red/internal/vault"
)

func stdMAC(key []byte, value string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(value))
	return h.Sum(nil)
}

func TestMACIsHMACSHA256(t *testing.T) {
	keys := [][]byte{nil, []byte("k"), bytes.Repeat([]byte{0xA5}, 32), bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{2}, 65), bytes.Repeat([]byte{3}, 200)}
	values := []string{"", "mustermann", "http://fhir.de/sid/gkv/kvid-10|A123456780", strings.Repeat("x", 191), strings.Repeat("y", 192), strings.Repeat("z", 193), strings.Repeat("ä", 5000)}
	for _, k := range keys {
		for _, v := range values {
			if got, want := vault.MAC(k, v), stdMAC(k, v); !bytes.Equal(got, want) {
				t.Errorf("key of %d bytes, value of %d bytes: %x, want %x", len(k), len(v), got, want)
			}
		}
	}
}

func FuzzMACIsHMACSHA256(f *testing.F) {
	f.Add([]byte("key"), "value")
	f.Fuzz(func(t *testing.T, key []byte, value string) {
		if got, want := vault.MAC(key, value), stdMAC(key, value); !bytes.Equal(got, want) {
			t.Errorf("%x, want %x", got, want)
		}
	})
}
