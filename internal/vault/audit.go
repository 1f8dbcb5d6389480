package vault

// tokenKindAudit names the audit trail's chain key among the keys derived from the index key:
// a kind of its own, so that it never equals a blind-index key.
const tokenKindAudit byte = 'a'

// AuditMAC is the HMAC-SHA256 of data under the tenant's audit key (derived from the keyring's
// index key): each record of the audit trail carries it over its own content and its
// predecessor's MAC, so that whoever lacks the tenant's keys cannot alter, remove, insert or
// reorder records unseen.
func (b *Barrier) AuditMAC(data []byte) ([]byte, error) {
	if b.v.Sealed() {
		return nil, ErrSealed
	}
	return b.v.auditMAC(data)
}

// IDToken is the token the store keeps instead of a resource's id. The audit trail names the
// resources it records by it, so that it holds no id in plaintext even sealed.
func (b *Barrier) IDToken(typ, id string) ([]byte, error) {
	return b.idToken(typ, id)
}

func (v *Vault) auditMAC(data []byte) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.keys == nil {
		return nil, ErrSealed
	}
	key, cached, err := v.tokenKeyLocked(tokenKey{kind: tokenKindAudit, name: "chain"})
	if err != nil {
		return nil, err
	}
	if !cached {
		defer clear(key)
	}
	sum := mac(key, string(data))
	return sum[:], nil
}
