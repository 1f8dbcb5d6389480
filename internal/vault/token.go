package vault

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
)

const (
	tokenLen   = 16
	tokenLabel = "red/vault/token/v1"
	// maxTokenKeys bounds the per-index key cache; names beyond it are derived per call, so
	// request-supplied resource types cannot grow the cache without limit.
	maxTokenKeys = 256
)

// Kinds of keyed hash; each derives its keys under its own label, so a search index can never
// share a key with the id index whatever the names.
const (
	tokenKindIndex  byte = 'i'
	tokenKindID     byte = 'd'
	tokenKindDigest byte = 'h' // Barrier.Digest
	tokenKindGroup  byte = 'g' // user groups (visibility.go)
)

// tokenKey names one derived blind-index key.
type tokenKey struct {
	kind byte
	name string
}

// indexToken returns a blind-index token for value in the named index: HMAC-SHA256 under a per-index
// key derived from the tenant's index key, truncated to 16 bytes. Same (index, value) → same
// token; different index or tenant keyring → unrelated token.
func (v *Vault) indexToken(index, value string) ([]byte, error) {
	return v.token(tokenKey{tokenKindIndex, index}, value)
}

// idToken is indexToken for a resource id of type typ (what storage keeps instead of the id).
func (v *Vault) idToken(typ, id string) ([]byte, error) {
	return v.token(tokenKey{tokenKindID, typ}, id)
}

// groupMark is the token every user group's data carries.
func (v *Vault) groupMark() ([]byte, error) {
	return v.token(tokenKey{tokenKindGroup, "mark"}, "")
}

// groupToken is the token of the data of user group id.
func (v *Vault) groupToken(id string) ([]byte, error) {
	return v.token(tokenKey{tokenKindGroup, "group"}, id)
}

// groupTokens are the tokens a version of user group id carries: the mark and its group's.
func (v *Vault) groupTokens(id string) (mark, group []byte, err error) {
	if mark, err = v.groupMark(); err != nil {
		return nil, nil, err
	}
	group, err = v.groupToken(id)
	return mark, group, err
}

// digest is the keyed hash of a secret for purpose (Barrier.Digest): the whole HMAC, under a
// key of its own kind.
func (v *Vault) digest(purpose, secret string) ([]byte, error) {
	sum, err := v.sum(tokenKey{tokenKindDigest, purpose}, secret)
	if err != nil {
		return nil, err
	}
	return sum[:], nil
}

// token computes the truncated HMAC of value under the key named by k.
func (v *Vault) token(k tokenKey, value string) ([]byte, error) {
	sum, err := v.sum(k, value)
	if err != nil {
		return nil, err
	}
	out := make([]byte, tokenLen)
	copy(out, sum[:])
	return out, nil
}

// sum computes the HMAC of value under the key named by k.
func (v *Vault) sum(k tokenKey, value string) ([sha256.Size]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return [sha256.Size]byte{}, ErrSealed
	}
	key, cached, err := v.tokenKeyLocked(k)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	if !cached {
		defer clear(key)
	}
	return mac(key, value), nil
}

// macOnStack bounds the values whose HMAC is computed without allocating.
const macOnStack = 192

// mac is HMAC-SHA256(key, value) (RFC 2104) with its state on the stack and wiped after:
// crypto/hmac allocates its state on every call, and a token is computed for every id and search
// value of every request. Keys longer than a block (the derived keys are never) go to crypto/hmac.
func mac(key []byte, value string) [sha256.Size]byte {
	if len(key) > sha256.BlockSize {
		h := hmac.New(sha256.New, key)
		_, _ = io.WriteString(h, value)
		return [sha256.Size]byte(h.Sum(nil))
	}
	var buf [sha256.BlockSize + macOnStack]byte
	inner := buf[:]
	if len(value) > macOnStack {
		inner = make([]byte, sha256.BlockSize+len(value))
	}
	inner = inner[:sha256.BlockSize+len(value)]
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		inner[i], outer[i] = k^0x36, k^0x5c
	}
	copy(inner[sha256.BlockSize:], value)
	innerSum := sha256.Sum256(inner)
	copy(outer[sha256.BlockSize:], innerSum[:])
	sum := sha256.Sum256(outer[:])
	clear(inner[:sha256.BlockSize])
	clear(outer[:])
	return sum
}

// tokenKeyLocked returns the derived key for k, from the cache when possible; v.mu must be
// read-held. An uncached key must be cleared by the caller.
func (v *Vault) tokenKeyLocked(k tokenKey) (key []byte, cached bool, err error) {
	v.tokenMu.Lock()
	defer v.tokenMu.Unlock()
	if key, ok := v.tokenKeys[k]; ok {
		return key, true, nil
	}
	info := make([]byte, 0, len(tokenLabel)+1+binary.MaxVarintLen64+len(k.name))
	info = append(info, tokenLabel...)
	info = append(info, k.kind)
	info = appendField(info, k.name)
	key, err = hkdf.Key(sha256.New, v.keys.index, nil, string(info), sha256.Size)
	if err != nil {
		return nil, false, err
	}
	if len(v.tokenKeys) >= maxTokenKeys {
		return key, false, nil
	}
	if v.tokenKeys == nil {
		v.tokenKeys = make(map[tokenKey][]byte)
	}
	v.tokenKeys[k] = key
	return key, true, nil
}
