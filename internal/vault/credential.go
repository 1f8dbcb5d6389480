package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KDFParams are the Argon2id cost parameters a credential is derived with. They are stored in
// the credential blob, so raising DefaultKDF later does not lock out existing users.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // parallelism
}

// DefaultKDF is the production cost (RFC 9106's second recommended option, 64 MiB).
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// TestKDF is cheap, for tests only.
var TestKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Bounds on KDF parameters. A blob comes from the database, and a corrupted or planted one must
// not make login allocate absurd memory or spin for hours.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
)

// A credential blob is
//
//	format (1) | KDF (1) | time (4) | memory KiB (4) | threads (1) | salt (16) | nonce (24) | sealed keyring
//
// with integers big endian. The sealed keyring is XChaCha20-Poly1305 under the Argon2id key; its
// associated data binds tenant, user and the header, so a blob opens for no other user or tenant
// and its parameters cannot be altered.
const (
	blobFormat    = 1
	kdfArgon2id   = 1
	saltLen       = 16
	blobHeaderLen = 1 + 1 + 4 + 4 + 1 + saltLen
	blobMinLen    = blobHeaderLen + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

var (
	errMalformedCredential   = errors.New("vault: malformed credential")
	errUnsupportedCredential = errors.New("vault: unsupported credential format")
	errKDFParams             = errors.New("vault: KDF parameters out of range")
	errEmptyPassword         = errors.New("vault: empty password")
)

const credentialLabel = "red/vault/credential/v1"

// validate refuses parameters argon2 would panic on or that are absurdly expensive.
func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.Threads < 1 ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("%w: time %d, memory %d KiB, threads %d", errKDFParams, p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// NewCredential makes a fresh tenant keyring and returns it wrapped for user (the credential blob
// stored by storage.Credential.Blob). rnd is the randomness source (crypto/rand.Reader in
// production; nil means crypto/rand.Reader).
func NewCredential(rnd io.Reader, tenant, user string, password []byte, p KDFParams) ([]byte, error) {
	if err := checkWrap(password, p); err != nil {
		return nil, err
	}
	rnd = orCryptoRand(rnd)
	k, err := newKeyring(rnd)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	plain := k.marshal()
	defer clear(plain)
	return wrap(rnd, tenant, user, password, p, plain)
}

// Rewrap unwraps blob with (user, password) and wraps the same keyring for (newUser, newPassword)
// with p: used for `red user add` (new user) and `red passwd` (same user, new password). No data
// is re-encrypted.
func Rewrap(rnd io.Reader, tenant, user string, blob, password []byte, newUser string, newPassword []byte, p KDFParams) ([]byte, error) {
	if err := checkWrap(newPassword, p); err != nil {
		return nil, err
	}
	plain, err := unwrap(tenant, user, blob, password)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	k, err := parseKeyring(plain)
	if err != nil {
		return nil, err
	}
	k.wipe()
	return wrap(orCryptoRand(rnd), tenant, newUser, newPassword, p, plain)
}

// Wrap returns the keyring the unsealed vault holds wrapped for user of its tenant under
// password with p: red user add, by a user logged in. No data is re-encrypted.
func (v *Vault) Wrap(rnd io.Reader, user string, password []byte, p KDFParams) ([]byte, error) {
	if err := checkWrap(password, p); err != nil {
		return nil, err
	}
	v.mu.RLock()
	if v.keys == nil {
		v.mu.RUnlock()
		return nil, ErrSealed
	}
	plain := v.keys.marshal()
	v.mu.RUnlock()
	defer clear(plain)
	return wrap(orCryptoRand(rnd), v.tenant, user, password, p, plain)
}

// checkWrap refuses what wrap would refuse, before any expensive work.
func checkWrap(password []byte, p KDFParams) error {
	if len(password) == 0 {
		return errEmptyPassword
	}
	return p.validate()
}

// wrap seals the encoded keyring for (tenant, user) under a key derived from password.
func wrap(rnd io.Reader, tenant, user string, password []byte, p KDFParams, keyring []byte) ([]byte, error) {
	if err := checkWrap(password, p); err != nil {
		return nil, err
	}
	nonceEnd := blobHeaderLen + chacha20poly1305.NonceSizeX
	blob := make([]byte, nonceEnd, nonceEnd+len(keyring)+chacha20poly1305.Overhead)
	blob[0] = blobFormat
	blob[1] = kdfArgon2id
	binary.BigEndian.PutUint32(blob[2:], p.Time)
	binary.BigEndian.PutUint32(blob[6:], p.MemoryKiB)
	blob[10] = p.Threads
	if err := readRandom(rnd, blob[blobHeaderLen-saltLen:nonceEnd]); err != nil {
		return nil, err
	}
	salt := blob[blobHeaderLen-saltLen : blobHeaderLen]
	aead, wipeKey, err := credentialAEAD(password, salt, p)
	if err != nil {
		return nil, err
	}
	defer wipeKey()
	return aead.Seal(blob, blob[blobHeaderLen:nonceEnd], keyring, credentialAD(tenant, user, blob[:blobHeaderLen])), nil
}

// unwrap returns the encoded keyring in blob; the caller must clear it when done. A blob that
// parses but does not open yields ErrBadPassword.
func unwrap(tenant, user string, blob, password []byte) ([]byte, error) {
	header, p, err := parseCredential(blob)
	if err != nil {
		return nil, err
	}
	nonceEnd := blobHeaderLen + chacha20poly1305.NonceSizeX
	aead, wipeKey, err := credentialAEAD(password, header[blobHeaderLen-saltLen:], p)
	if err != nil {
		return nil, err
	}
	defer wipeKey()
	plain, err := aead.Open(nil, blob[blobHeaderLen:nonceEnd], blob[nonceEnd:], credentialAD(tenant, user, header))
	if err != nil {
		return nil, ErrBadPassword
	}
	return plain, nil
}

// parseCredential checks a blob's shape and parameters without running the KDF and returns its
// header and parameters.
func parseCredential(blob []byte) (header []byte, p KDFParams, err error) {
	if len(blob) < blobMinLen {
		return nil, KDFParams{}, errMalformedCredential
	}
	if blob[0] != blobFormat || blob[1] != kdfArgon2id {
		return nil, KDFParams{}, fmt.Errorf("%w (format %d, KDF %d)", errUnsupportedCredential, blob[0], blob[1])
	}
	p = KDFParams{
		Time:      binary.BigEndian.Uint32(blob[2:]),
		MemoryKiB: binary.BigEndian.Uint32(blob[6:]),
		Threads:   blob[10],
	}
	if err := p.validate(); err != nil {
		return nil, KDFParams{}, err
	}
	return blob[:blobHeaderLen], p, nil
}

// credentialAEAD derives the wrapping key. The returned function zeros the derived key; the copy
// inside the AEAD value is beyond reach and left to the garbage collector.
func credentialAEAD(password, salt []byte, p KDFParams) (cipher.AEAD, func(), error) {
	key := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	wipe := func() { clear(key) }
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		wipe()
		return nil, nil, err
	}
	return aead, wipe, nil
}

// credentialAD binds a wrapped keyring to its tenant, user and blob header.
func credentialAD(tenant, user string, header []byte) []byte {
	ad := make([]byte, 0, len(credentialLabel)+len(tenant)+len(user)+len(header)+2*binary.MaxVarintLen64)
	ad = append(ad, credentialLabel...)
	ad = appendField(ad, tenant)
	ad = appendField(ad, user)
	return append(ad, header...)
}

// appendField appends f with its length in front, so adjacent fields cannot be shifted into
// each other.
func appendField[F ~string | ~[]byte](b []byte, f F) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// orCryptoRand returns rnd, or crypto/rand.Reader when rnd is nil.
func orCryptoRand(rnd io.Reader) io.Reader {
	if rnd == nil {
		return rand.Reader
	}
	return rnd
}
