package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// TokenPrefix starts every API token, so that one found in a log or a file is recognised.
const TokenPrefix = "red_"

// tokenPurpose names the vault's digests of API tokens.
const tokenPurpose = "red:token"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// AddToken issues a new API token named name (the client program it is for, e.g. kasse-pvs) and
// returns it: 256 random bits, shown this once. Only the vault's digest of it is kept.
func (d *Directory) AddToken(ctx context.Context, name string) (string, error) {
	if !tokenName.MatchString(name) {
		return "", fmt.Errorf("token name %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	var old Token
	h, err := d.load(ctx, tokenType, name, &old)
	if err != nil {
		return "", err
	}
	if h.exists {
		return "", fmt.Errorf("a token named %s exists already: remove it first (red token remove %s) to issue a new one", name, name)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	digest, err := d.barrier.Digest(tokenPurpose, secret)
	if err != nil {
		return "", err
	}
	if err := d.save(ctx, tokenType, name, h, Token{Name: name, Digest: digest, Created: d.now()}); err != nil {
		return "", err
	}
	return secret, nil
}

// RemoveToken withdraws the API token name.
func (d *Directory) RemoveToken(ctx context.Context, name string) error {
	var t Token
	h, err := d.load(ctx, tokenType, name, &t)
	if err != nil {
		return err
	}
	if !h.exists {
		return fmt.Errorf("tenant %s has no token named %s", d.tenant, name)
	}
	return d.save(ctx, tokenType, name, h, nil)
}

// Tokens lists the tenant's API tokens, by name.
func (d *Directory) Tokens(ctx context.Context) ([]Token, error) {
	ts, err := all[Token](ctx, d, tokenType)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b Token) int { return strings.Compare(a.Name, b.Name) })
	return ts, nil
}

// client is the name of the token among ts that presented is, "" for none. The digests are
// compared in constant time, each of them, so that the time taken tells nothing of which token
// came close.
func (d *Directory) client(presented string, ts []Token) (string, error) {
	digest, err := d.barrier.Digest(tokenPurpose, presented)
	if err != nil {
		return "", err
	}
	name := ""
	for _, t := range ts {
		if hmac.Equal(digest, t.Digest) {
			name = t.Name
		}
	}
	return name, nil
}
