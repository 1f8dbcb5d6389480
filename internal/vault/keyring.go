package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// The keyring is what a credential blob wraps. Its plaintext encoding is
//
//	format (1) | current data-key id (4) | index key (32) | count (2) | count × (id (4) | key (32))
//
// with every integer big endian and the data keys in ascending id order.
const (
	keyringFormat = 1
	keyLen        = 32
	firstKeyID    = 1
	maxDataKeys   = 1<<16 - 1
	keyringFixed  = 1 + 4 + keyLen + 2
	keyringEntry  = 4 + keyLen
)

var errMalformedKeyring = errors.New("vault: malformed keyring")

// keyring holds a tenant's keys. Data keys seal records; old ids stay so that records sealed
// before a rotation still open. The index key is the root of all blind-index keys.
type keyring struct {
	current uint32
	data    map[uint32][]byte
	index   []byte
}

// newKeyring draws a data key (id 1) and an index key from rnd.
func newKeyring(rnd io.Reader) (*keyring, error) {
	k := &keyring{
		current: firstKeyID,
		data:    map[uint32][]byte{firstKeyID: make([]byte, keyLen)},
		index:   make([]byte, keyLen),
	}
	if err := readRandom(rnd, k.data[firstKeyID]); err != nil {
		k.wipe()
		return nil, err
	}
	if err := readRandom(rnd, k.index); err != nil {
		k.wipe()
		return nil, err
	}
	return k, nil
}

// marshal encodes the keyring; the caller must clear the result when done with it.
func (k *keyring) marshal() []byte {
	b := make([]byte, 0, keyringFixed+len(k.data)*keyringEntry)
	b = append(b, keyringFormat)
	b = binary.BigEndian.AppendUint32(b, k.current)
	b = append(b, k.index...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.data)))
	for _, id := range slices.Sorted(maps.Keys(k.data)) {
		b = binary.BigEndian.AppendUint32(b, id)
		b = append(b, k.data[id]...)
	}
	return b
}

// parseKeyring decodes b into fresh slices, so the caller may clear b afterwards.
func parseKeyring(b []byte) (*keyring, error) {
	if len(b) < keyringFixed || b[0] != keyringFormat {
		return nil, errMalformedKeyring
	}
	n := int(binary.BigEndian.Uint16(b[1+4+keyLen:]))
	if n == 0 || len(b) != keyringFixed+n*keyringEntry {
		return nil, errMalformedKeyring
	}
	k := &keyring{
		current: binary.BigEndian.Uint32(b[1:]),
		data:    make(map[uint32][]byte, n),
		index:   slices.Clone(b[5 : 5+keyLen]),
	}
	for rest := b[keyringFixed:]; len(rest) > 0; rest = rest[keyringEntry:] {
		id := binary.BigEndian.Uint32(rest)
		if _, dup := k.data[id]; dup {
			k.wipe()
			return nil, errMalformedKeyring
		}
		k.data[id] = slices.Clone(rest[4:keyringEntry])
	}
	if _, ok := k.data[k.current]; !ok {
		k.wipe()
		return nil, errMalformedKeyring
	}
	return k, nil
}

// wipe overwrites every key with zeros and forgets them.
func (k *keyring) wipe() {
	if k == nil {
		return
	}
	for _, key := range k.data {
		clear(key)
	}
	clear(k.index)
	k.data, k.index, k.current = nil, nil, 0
}

// readRandom fills b from rnd.
func readRandom(rnd io.Reader, b []byte) error {
	if _, err := io.ReadFull(rnd, b); err != nil {
		return fmt.Errorf("vault: reading randomness: %w", err)
	}
	return nil
}
