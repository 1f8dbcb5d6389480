package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// demoBundle holds fictional patients for the demo tenant.
//
//go:embed demo-bundle.xml
var demoBundle []byte

const demoTenant, demoUser = "demo", "demo"

func (e *env) demoCmd() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "demo",
		Short: "serve the demo tenant, creating it with fictional patients on first use",
		Long: "demo creates the tenant \"demo\" (user \"demo\", a random password kept in the data directory) if it\n" +
			"does not exist, stores two fictional patients, and serves it like red serve.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := e.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			pw, err := e.ensureDemo(ctx, st)
			if err != nil {
				return err
			}
			o.tenant, o.user = demoTenant, demoUser
			return e.serve(ctx, st, o, pw, func(base string) {
				fmt.Fprintf(e.io.Out, "try:  curl -s '%s/%s/Patient?page=1'\n", base, demoTenant)
				fmt.Fprintf(e.io.Out, "red: demo tenant unlocked; listening on %s/%s (Ctrl-C stops and wipes the keys)\n", base, demoTenant)
			})
		},
	}
	o.flags(c)
	return c
}

// ensureDemo returns the demo user's password, creating the tenant, its password file and its
// demo patients when the tenant does not exist yet.
func (e *env) ensureDemo(ctx context.Context, st storage.Store) ([]byte, error) {
	pwPath := filepath.Join(e.dataDir, "demo-password")
	_, err := st.Tenant(ctx, demoTenant)
	switch {
	case err == nil:
		pw, err := os.ReadFile(pwPath)
		if err != nil {
			return nil, fmt.Errorf("the demo tenant exists but its password file is unreadable (%w); use red serve --tenant demo --user demo", err)
		}
		return bytes.TrimSpace(pw), nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	pw := []byte(hex.EncodeToString(raw[:]))
	if err := os.MkdirAll(e.dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pwPath, pw, 0o600); err != nil {
		return nil, err
	}
	blob, err := vault.NewCredential(rand.Reader, demoTenant, demoUser, pw, e.kdf)
	if err != nil {
		return nil, err
	}
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: demoTenant}); err != nil {
		return nil, err
	}
	if err := st.PutCredential(ctx, storage.Credential{Tenant: demoTenant, User: demoUser, Blob: blob}); err != nil {
		return nil, err
	}
	v := vault.New(demoTenant, rand.Reader)
	if err := v.Unseal(demoUser, blob, pw); err != nil {
		return nil, err
	}
	defer v.Lock()
	b, err := fhir.Parse(demoBundle, fhir.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if _, err := (&records.Service{Tenant: demoTenant, Store: st, Vault: v}).PostBundle(ctx, b); err != nil {
		return nil, fmt.Errorf("store demo patients: %w", err)
	}
	fmt.Fprintf(e.io.Out, "red: created tenant %q, user %q, password %s (kept in %s) with two fictional patients\n", demoTenant, demoUser, pw, pwPath)
	return pw, nil
}
