package vault

import (
	"io"
	"maps"
	"slices"
)

// KeyBytes returns the slices holding the vault's live keys (data keys, index key, cached
// blind-index keys), so a test can watch Lock overwrite them.
func KeyBytes(v *Vault) [][]byte {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil
	}
	out := append(slices.Collect(maps.Values(v.keys.data)), v.keys.index)
	v.tokenMu.Lock()
	defer v.tokenMu.Unlock()
	return append(out, slices.Collect(maps.Values(v.tokenKeys))...)
}

// Rotate unwraps blob, adds a fresh data key with the next id, makes it current and wraps the
// keyring again for the same user: what a future key rotation does to each credential.
func Rotate(rnd io.Reader, tenant, user string, blob, password []byte, p KDFParams) ([]byte, error) {
	return rewrapKeyring(rnd, tenant, tenant, user, blob, password, p, func(k *keyring) error {
		next := slices.Max(slices.Collect(maps.Keys(k.data))) + 1
		key := make([]byte, keyLen)
		if err := readRandom(rnd, key); err != nil {
			return err
		}
		k.data[next], k.current = key, next
		return nil
	})
}

// MoveToTenant wraps the keyring in blob for another tenant, so a test can tell the tenant
// binding of sealed data apart from merely having a different keyring.
func MoveToTenant(rnd io.Reader, from, to, user string, blob, password []byte, p KDFParams) ([]byte, error) {
	return rewrapKeyring(rnd, from, to, user, blob, password, p, func(*keyring) error { return nil })
}

func rewrapKeyring(rnd io.Reader, from, to, user string, blob, password []byte, p KDFParams, change func(*keyring) error) ([]byte, error) {
	plain, err := unwrap(from, user, blob, password)
	if err != nil {
		return nil, err
	}
	k, err := parseKeyring(plain)
	clear(plain)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	if err := change(k); err != nil {
		return nil, err
	}
	plain = k.marshal()
	defer clear(plain)
	return wrap(rnd, to, user, password, p, plain)
}

// ParseCredential checks a blob's shape and parameters without running the KDF.
func ParseCredential(blob []byte) error {
	_, _, err := parseCredential(blob)
	return err
}

// ParseKeyring decodes an encoded keyring and wipes the result.
func ParseKeyring(b []byte) error {
	k, err := parseKeyring(b)
	k.wipe()
	return err
}

// The vault's own operations, which only the barrier calls in production.

func Seal(v *Vault, typ string, id []byte, version int64, plaintext []byte) ([]byte, error) {
	return v.sealRecord(typ, id, version, "", plaintext)
}

func Open(v *Vault, typ string, id []byte, version int64, sealed []byte) ([]byte, error) {
	_, body, err := v.openRecord(typ, id, version, sealed)
	return body, err
}

func SealGroup(v *Vault, typ string, id []byte, version int64, group string, body []byte) ([]byte, error) {
	return v.sealRecord(typ, id, version, group, body)
}

func OpenGroup(v *Vault, typ string, id []byte, version int64, sealed []byte) (string, []byte, error) {
	return v.openRecord(typ, id, version, sealed)
}

// SealBeforeGroups seals a resource version as red did before user groups (format 1: the body
// alone).
func SealBeforeGroups(v *Vault, typ string, id []byte, version int64, body []byte) ([]byte, error) {
	return v.seal(sealFormat, v.recordAD(typ, id, version), len(body), func(pt []byte) { copy(pt, body) })
}

func GroupTokens(v *Vault, group string) (mark, tok []byte, err error) { return v.groupTokens(group) }

func Token(v *Vault, index, value string) ([]byte, error) { return v.indexToken(index, value) }

func IDToken(v *Vault, typ, id string) ([]byte, error) { return v.idToken(typ, id) }

func SealString(v *Vault, purpose, plaintext string) (string, error) {
	return v.sealString(purpose, plaintext)
}

func OpenString(v *Vault, purpose, sealed string) (string, error) {
	return v.openString(purpose, sealed)
}

// MAC is the vault's HMAC-SHA256.
func MAC(key []byte, value string) []byte {
	sum := mac(key, value)
	return sum[:]
}
