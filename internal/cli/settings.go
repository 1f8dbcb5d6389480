package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// A tenant's settings are one record written and read through the vault's barrier, sealed like a
// resource: every backend keeps them without a schema of their own, every workstation serving
// the tenant from a shared database reads the same ones, a write that races another one fails
// (optimistic versions), and changing them needs a user's login. Their storage type is no FHIR
// resource type, so the API never reaches them.
const settingsType, settingsID = "red:settings", "tenant"

// tenantSettings are what a practice decides for all its workstations.
type tenantSettings struct {
	// Validation is kbv.ModeStrict's or kbv.ModeProfile's name; "" when never set (profile).
	Validation string `json:"validation,omitempty"`
}

// loadSettings reads the tenant's settings and their version (0: never written).
func loadSettings(ctx context.Context, b *vault.Barrier) (tenantSettings, int64, error) {
	var s tenantSettings
	r, err := b.Current(ctx, settingsType, settingsID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return s, 0, nil
	case err != nil:
		return s, 0, err
	}
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return s, 0, fmt.Errorf("the tenant's settings are unreadable: %w", err)
	}
	return s, r.Version, nil
}

// saveSettings writes the tenant's settings over version expect.
func saveSettings(ctx context.Context, b *vault.Barrier, s tenantSettings, expect int64) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	err = b.Commit(ctx, []vault.Write{{Type: settingsType, ID: settingsID, Expect: expect, Updated: time.Now().UTC(), Body: body}})
	if errors.Is(err, storage.ErrConflict) {
		return errors.New("another workstation changed the tenant's settings at the same moment; nothing was changed — run the command again")
	}
	return err
}

// validationFlag is --validation: unset, the tenant's setting applies.
type validationFlag struct {
	mode kbv.Mode
	set  bool
}

func (f *validationFlag) String() string { return f.mode.String() }
func (f *validationFlag) Type() string   { return "profile|strict" }
func (f *validationFlag) Set(s string) error {
	m, err := kbv.ParseMode(s)
	if err != nil {
		return err
	}
	f.mode, f.set = m, true
	return nil
}

// validationMode is the mode a server validates with: --validation when given, else the tenant's
// setting, else kbv.ModeProfile; and where it comes from, for the start message.
func validationMode(ctx context.Context, b *vault.Barrier, flag validationFlag) (kbv.Mode, string, error) {
	if flag.set {
		return flag.mode, "--validation", nil
	}
	s, _, err := loadSettings(ctx, b)
	if err != nil {
		return kbv.ModeProfile, "", err
	}
	if s.Validation == "" {
		return kbv.ModeProfile, "default", nil
	}
	m, err := kbv.ParseMode(s.Validation)
	if err != nil {
		return kbv.ModeProfile, "", fmt.Errorf("the tenant's settings: %w", err)
	}
	return m, "tenant setting", nil
}

func (e *env) configCmd() *cobra.Command {
	var tenant, user, pwFile string
	var validation validationFlag
	c := &cobra.Command{
		Use:   "config --tenant ALIAS --user NAME [--validation profile|strict]",
		Short: "show or change the tenant's settings (a user's password unlocks them)",
		Long: "config shows the tenant's settings, and changes those given. They hold for every workstation\n" +
			"serving the tenant; red serve --validation overrides the tenant's validation for that server.\n\n" +
			"--validation profile (the default): the KBV profiles decide what is refused; plausibility findings\n" +
			"  (a wrong check digit, a date in the future) come back as warnings with the stored resources.\n" +
			"--validation strict: plausibility findings refuse the bundle too.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, pw, err := e.login(ctx, tenant, user, pwFile)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := e.unlock(ctx, st, tenant, user, pw)
			wipe(pw)
			if err != nil {
				return err
			}
			defer v.Lock()
			b := v.Barrier(st)
			s, version, err := loadSettings(ctx, b)
			if err != nil {
				return err
			}
			if validation.set {
				s.Validation = validation.mode.String()
				if err := saveSettings(ctx, b, s, version); err != nil {
					return err
				}
			}
			shown := s.Validation
			if shown == "" {
				shown = kbv.ModeProfile.String() + " (default)"
			}
			fmt.Fprintf(e.io.Out, "tenant %s: validation %s\n", tenant, shown)
			return nil
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "tenant alias (required)")
	c.Flags().StringVar(&user, "user", "", "user name (required)")
	c.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt)")
	c.Flags().Var(&validation, "validation", "profile: plausibility findings are warnings; strict: they refuse the bundle")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}
