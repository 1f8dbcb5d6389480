package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

var aliasPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkAlias(what, s string) error {
	if !aliasPattern.MatchString(s) {
		return fmt.Errorf("%s %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", what, s)
	}
	return nil
}

func (e *env) initCmd() *cobra.Command {
	var tenant, user, pwFile string
	c := &cobra.Command{
		Use:   "init --tenant ALIAS --user NAME",
		Short: "create a tenant (a practice) and its first user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAlias("tenant", tenant); err != nil {
				return err
			}
			if err := checkAlias("user", user); err != nil {
				return err
			}
			pw, err := e.password(passwordSource{file: pwFile, envVar: "RED_PASSWORD", prompt: "Password for " + user}, true)
			if err != nil {
				return err
			}
			defer wipe(pw)
			if err := e.createTenant(cmd, tenant, user, pw); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "created tenant %s with user %s in %s\n", tenant, user, e.where())
			return nil
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "tenant alias, as it appears in URLs (required)")
	c.Flags().StringVar(&user, "user", "", "first user's name (required)")
	c.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt)")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}

func (e *env) createTenant(cmd *cobra.Command, tenant, user string, pw []byte) error {
	ctx := cmd.Context()
	st, err := e.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	blob, err := vault.NewCredential(rand.Reader, tenant, user, pw, e.kdf)
	if err != nil {
		return err
	}
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: tenant, Created: time.Now().UTC()}); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("tenant %s exists already", tenant)
		}
		return err
	}
	return st.PutCredential(ctx, storage.Credential{Tenant: tenant, User: user, Blob: blob})
}

func (e *env) userCmd() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "manage a tenant's users"}
	var tenant, user, newUser, pwFile, newPwFile string
	add := &cobra.Command{
		Use:   "add --tenant ALIAS --user EXISTING --new-user NAME",
		Short: "add a user: an existing user's password unlocks the tenant's keys, which are wrapped again for the new user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAlias("user", newUser); err != nil {
				return err
			}
			return e.rewrap(cmd, tenant, user, newUser, pwFile, newPwFile, false)
		},
	}
	add.Flags().StringVar(&tenant, "tenant", "", "tenant alias (required)")
	add.Flags().StringVar(&user, "user", "", "an existing user (required)")
	add.Flags().StringVar(&newUser, "new-user", "", "the user to add (required)")
	add.Flags().StringVar(&pwFile, "password-file", "", "the existing user's password (else RED_PASSWORD, else a prompt)")
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "the new user's password (else RED_NEW_PASSWORD, else a prompt)")
	for _, f := range []string{"tenant", "user", "new-user"} {
		_ = add.MarkFlagRequired(f)
	}
	c.AddCommand(add)
	return c
}

func (e *env) passwdCmd() *cobra.Command {
	var tenant, user, pwFile, newPwFile string
	c := &cobra.Command{
		Use:   "passwd --tenant ALIAS --user NAME",
		Short: "change a user's password (the keys are wrapped again; no data is re-encrypted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.rewrap(cmd, tenant, user, user, pwFile, newPwFile, true)
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "tenant alias (required)")
	c.Flags().StringVar(&user, "user", "", "user name (required)")
	c.Flags().StringVar(&pwFile, "password-file", "", "the current password (else RED_PASSWORD, else a prompt)")
	c.Flags().StringVar(&newPwFile, "new-password-file", "", "the new password (else RED_NEW_PASSWORD, else a prompt)")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}

// rewrap unwraps user's credential and stores a copy for newUser under a new password.
func (e *env) rewrap(cmd *cobra.Command, tenant, user, newUser, pwFile, newPwFile string, replace bool) error {
	ctx := cmd.Context()
	st, err := e.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	cred, err := e.credential(ctx, st, tenant, user)
	if err != nil {
		return err
	}
	if !replace {
		if _, err := st.Credential(ctx, tenant, newUser); err == nil {
			return fmt.Errorf("user %s exists already in tenant %s", newUser, tenant)
		}
	}
	pw, err := e.password(passwordSource{file: pwFile, envVar: "RED_PASSWORD", prompt: "Password of " + user}, false)
	if err != nil {
		return err
	}
	defer wipe(pw)
	newPw, err := e.password(passwordSource{file: newPwFile, envVar: "RED_NEW_PASSWORD", prompt: "New password for " + newUser}, true)
	if err != nil {
		return err
	}
	defer wipe(newPw)
	blob, err := vault.Rewrap(rand.Reader, tenant, user, cred.Blob, pw, newUser, newPw, e.kdf)
	if errors.Is(err, vault.ErrBadPassword) {
		return errLogin
	}
	if err != nil {
		return err
	}
	if err := st.PutCredential(ctx, storage.Credential{Tenant: tenant, User: newUser, Blob: blob}); err != nil {
		return err
	}
	if replace {
		fmt.Fprintf(e.io.Out, "changed the password of %s in tenant %s\n", user, tenant)
	} else {
		fmt.Fprintf(e.io.Out, "added user %s to tenant %s\n", newUser, tenant)
	}
	return nil
}
