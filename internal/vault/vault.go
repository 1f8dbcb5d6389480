// Package vault is the only code that holds keys: it unwraps a tenant's keyring with a user's
// password, seals and opens everything person-related before it reaches the database, and turns
// search values into blind-index tokens. Its barrier is also where user groups are enforced: it
// shows each user only the data of the groups they belong to and the tenant's (visibility.go).
package vault

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/samber/oops"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/redclone/red/fhir"
)

// Errors every caller can tell apart.
var (
	// ErrSealed is returned by every operation on a sealed or locked vault; a caller reads that
	// the tenant is locked (403).
	ErrSealed = oops.Code(fhir.CodeLogin).Public("this tenant is locked on this server; log in again").New("vault: sealed")
	// ErrBadPassword is returned when a credential does not open for the user name, password and
	// tenant given; which of the three was wrong is not revealed.
	ErrBadPassword = errors.New("vault: wrong user name or password")
	// ErrTampered is returned for ciphertext that does not open: wrong associated data, a row
	// moved elsewhere, a flipped bit, truncation or an unknown key id.
	ErrTampered = errors.New("vault: ciphertext does not open")
)

// A sealed value is
//
//	format (1) | data-key id (4, big endian) | nonce (24) | ciphertext and tag
//
// The associated data is a label for the kind of value, its binding fields (each length
// prefixed) and the 5 header bytes. A resource version's plaintext (format 2) is its user group
// (uvarint length, then the id; empty for data the whole tenant sees) followed by the body, so
// the group is sealed and bound together with the body; versions written before user groups
// (format 1) are the body alone and belong to no group.
const (
	sealFormat    = 1 // strings; resource versions written before user groups
	recordFormat  = 2 // resource versions: user group and body
	sealHeaderLen = 1 + 4
	sealNonceEnd  = sealHeaderLen + chacha20poly1305.NonceSizeX
	sealMinLen    = sealNonceEnd + chacha20poly1305.Overhead

	recordLabel = "red/vault/record/v1"
	stringLabel = "red/vault/string/v1"
)

// Vault holds one tenant's keys while unsealed. It starts sealed, Unseal loads the keys from a
// credential, Lock wipes them. It is safe for concurrent use.
type Vault struct {
	tenant string

	rndMu sync.Mutex // serialises nonce reads, so an injected reader need not be concurrency-safe
	rnd   io.Reader

	mu   sync.RWMutex // write-held to change keys, read-held while any key is in use
	keys *keyring     // nil while sealed

	tokenMu   sync.Mutex          // guards tokenKeys under mu's read lock
	tokenKeys map[tokenKey][]byte // derived blind-index keys, wiped on Lock
}

// New returns a sealed vault for tenant. rnd supplies nonces (crypto/rand.Reader in production;
// nil means crypto/rand.Reader).
func New(tenant string, rnd io.Reader) *Vault {
	return &Vault{tenant: tenant, rnd: orCryptoRand(rnd)}
}

// Tenant returns the tenant the vault belongs to.
func (v *Vault) Tenant() string { return v.tenant }

// Unseal opens blob with (user, password) and loads the tenant keyring, replacing any keyring
// already loaded. It returns ErrBadPassword when the user name, password or tenant is wrong; the
// vault's state is unchanged on any error.
func (v *Vault) Unseal(user string, blob, password []byte) error {
	plain, err := unwrap(v.tenant, user, blob, password)
	if err != nil {
		return err
	}
	k, err := parseKeyring(plain)
	clear(plain)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.wipeLocked()
	v.keys = k
	return nil
}

// Lock overwrites every key byte the vault holds with zeros and seals it again.
func (v *Vault) Lock() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.wipeLocked()
}

// wipeLocked zeros and drops all keys; v.mu must be write-held.
func (v *Vault) wipeLocked() {
	v.keys.wipe()
	v.keys = nil
	v.tokenMu.Lock()
	defer v.tokenMu.Unlock()
	for _, key := range v.tokenKeys {
		clear(key)
	}
	v.tokenKeys = nil
}

// Sealed reports whether the vault holds no keys.
func (v *Vault) Sealed() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.keys == nil
}

// sealRecord encrypts group and body bound to (tenant, typ, id, version) as associated data.
func (v *Vault) sealRecord(typ string, id []byte, version int64, group string, body []byte) ([]byte, error) {
	var size [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(size[:], uint64(len(group)))
	return v.seal(recordFormat, v.recordAD(typ, id, version), k+len(group)+len(body), func(pt []byte) {
		n := copy(pt, size[:k])
		n += copy(pt[n:], group)
		copy(pt[n:], body)
	})
}

// openRecord decrypts what sealRecord returned for the same (typ, id, version), or a version
// sealed before user groups (no group); anything else fails with ErrTampered.
func (v *Vault) openRecord(typ string, id []byte, version int64, sealed []byte) (group string, body []byte, err error) {
	plain, err := v.open(v.recordAD(typ, id, version), sealed, sealFormat, recordFormat)
	if err != nil || sealed[0] == sealFormat {
		return "", plain, err
	}
	n, k := binary.Uvarint(plain)
	if k <= 0 || n > uint64(len(plain)-k) {
		return "", nil, ErrTampered // sealed by this vault, so never: but no panic on a bug
	}
	return string(plain[k : k+int(n)]), plain[k+int(n):], nil
}

// sealString seals a short opaque value that travels in URLs (e.g. a search's parameters in a
// paging link): URL-safe base64 (no padding) of a sealed blob bound to purpose.
func (v *Vault) sealString(purpose, plaintext string) (string, error) {
	sealed, err := v.seal(sealFormat, v.stringAD(purpose), len(plaintext), func(pt []byte) { copy(pt, plaintext) })
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openString opens what sealString returned for the same purpose.
func (v *Vault) openString(purpose, sealed string) (string, error) {
	// Each sealed value has exactly one spelling: Strict refuses nonzero unused bits in the last
	// character, and the length check refuses the line breaks the decoder would skip.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	if err != nil || base64.RawURLEncoding.EncodedLen(len(raw)) != len(sealed) {
		raw = nil // fails as ErrTampered, or ErrSealed when sealed
	}
	plain, err := v.open(v.stringAD(purpose), raw, sealFormat)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// recordAD is the associated-data prefix of a stored resource version.
func (v *Vault) recordAD(typ string, id []byte, version int64) []byte {
	ad := make([]byte, 0, len(recordLabel)+3*binary.MaxVarintLen64+len(v.tenant)+len(typ)+len(id)+8+sealHeaderLen)
	ad = append(ad, recordLabel...)
	ad = appendField(ad, v.tenant)
	ad = appendField(ad, typ)
	ad = appendField(ad, id)
	return binary.BigEndian.AppendUint64(ad, uint64(version))
}

// stringAD is the associated-data prefix of a sealed URL string.
func (v *Vault) stringAD(purpose string) []byte {
	ad := make([]byte, 0, len(stringLabel)+2*binary.MaxVarintLen64+len(v.tenant)+len(purpose)+sealHeaderLen)
	ad = append(ad, stringLabel...)
	ad = appendField(ad, v.tenant)
	return appendField(ad, purpose)
}

// seal encrypts a plaintext of n bytes, which fill writes, under the current data key, with
// format in the header; the header is appended to ad. The plaintext is written into the output
// and encrypted in place.
func (v *Vault) seal(format byte, ad []byte, n int, fill func(plaintext []byte)) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, ErrSealed
	}
	out := make([]byte, sealNonceEnd+n, sealNonceEnd+n+chacha20poly1305.Overhead)
	out[0] = format
	binary.BigEndian.PutUint32(out[1:], v.keys.current)
	if err := v.nonce(out[sealHeaderLen:sealNonceEnd]); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(v.keys.data[v.keys.current])
	if err != nil {
		return nil, err
	}
	fill(out[sealNonceEnd:])
	return aead.Seal(out[:sealNonceEnd], out[sealHeaderLen:sealNonceEnd], out[sealNonceEnd:], append(ad, out[:sealHeaderLen]...)), nil
}

// open decrypts sealed, of one of formats, with the data key its header names; the header is
// appended to ad.
func (v *Vault) open(ad, sealed []byte, formats ...byte) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, ErrSealed
	}
	if len(sealed) < sealMinLen || !slices.Contains(formats, sealed[0]) {
		return nil, ErrTampered
	}
	key, ok := v.keys.data[binary.BigEndian.Uint32(sealed[1:])]
	if !ok {
		return nil, ErrTampered
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[sealHeaderLen:sealNonceEnd], sealed[sealNonceEnd:], append(ad, sealed[:sealHeaderLen]...))
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

// nonce fills b from the vault's randomness source.
func (v *Vault) nonce(b []byte) error {
	v.rndMu.Lock()
	defer v.rndMu.Unlock()
	return readRandom(v.rnd, b)
}
