package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/users"
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
	roles := rolesFlag{roles: []access.Role{access.Physician, access.Admin}}
	c := &cobra.Command{
		Use:   "init --tenant ALIAS --user NAME [--role physician,admin]",
		Short: "create a tenant (a practice) and its first user (by default a physician and admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAlias("tenant", tenant); err != nil {
				return err
			}
			if err := checkAlias("user", user); err != nil {
				return err
			}
			if !slices.Contains(roles.roles, access.Admin) {
				return errors.New("the first user of a tenant is its admin: give --role admin besides the others")
			}
			pw, err := e.password(passwordSource{file: pwFile, envVar: "RED_PASSWORD", prompt: "Password for " + user}, true)
			if err != nil {
				return err
			}
			defer wipe(pw)
			ctx := cmd.Context()
			st, err := e.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := e.newTenant(ctx, st, tenant, user, pw, roles.roles)
			if err != nil {
				return err
			}
			v.Lock()
			fmt.Fprintf(e.io.Out, "created tenant %s with user %s (%s) in %s\n", tenant, user, access.Join(roles.roles), e.where())
			return nil
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "tenant alias, as it appears in URLs (required)")
	c.Flags().StringVar(&user, "user", "", "first user's name (required)")
	c.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt)")
	c.Flags().Var(&roles, "role", "the first user's roles, comma-separated or repeated: physician, assistant, pharmacist, admin (admin among them)")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}

// newTenant creates tenant in st with its first user, who logs in with pw and holds roles, and
// returns the tenant's vault unsealed for that user.
func (e *env) newTenant(ctx context.Context, st storage.Store, tenant, user string, pw []byte, roles []access.Role) (*vault.Vault, error) {
	blob, err := vault.NewCredential(rand.Reader, tenant, user, pw, e.kdf)
	if err != nil {
		return nil, err
	}
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: tenant, Created: time.Now().UTC()}); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fmt.Errorf("tenant %s exists already", tenant)
		}
		return nil, err
	}
	if err := st.PutCredential(ctx, storage.Credential{Tenant: tenant, User: user, Blob: blob}); err != nil {
		return nil, err
	}
	v := vault.New(tenant, rand.Reader)
	if err := v.Unseal(user, blob, pw); err != nil {
		return nil, err
	}
	if err := users.New(tenant, v.Barrier(st), st).Created(ctx, user, roles); err != nil {
		v.Lock()
		return nil, err
	}
	return v, nil
}

func (e *env) userCmd() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "manage a tenant's users and their roles (an admin's login)"}
	var o loginOptions
	var newUser, newPwFile string
	var roles rolesFlag
	add := &cobra.Command{
		Use:   "add --tenant ALIAS --user ADMIN --new-user NAME --role ROLE[,ROLE]",
		Short: "add a user with their roles: an admin's password unlocks the tenant's keys, which are wrapped again for the new user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkAlias("user", newUser); err != nil {
				return err
			}
			ctx := cmd.Context()
			l, err := e.asAdmin(ctx, o, "adding a user", cmd.CommandPath())
			if err != nil {
				return err
			}
			defer l.close()
			ctx = access.With(ctx, l.who)
			if _, err := l.st.Credential(ctx, o.tenant, newUser); err == nil {
				return fmt.Errorf("user %s exists already in tenant %s", newUser, o.tenant)
			}
			newPw, err := e.password(passwordSource{file: newPwFile, envVar: "RED_NEW_PASSWORD", prompt: "New password for " + newUser}, true)
			if err != nil {
				return err
			}
			defer wipe(newPw)
			blob, err := l.v.Wrap(rand.Reader, newUser, newPw, e.kdf)
			if err != nil {
				return err
			}
			if err := l.st.PutCredential(ctx, storage.Credential{Tenant: o.tenant, User: newUser, Blob: blob}); err != nil {
				return err
			}
			if err := l.dir.Created(ctx, newUser, roles.roles); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "added user %s (%s) to tenant %s\n", newUser, access.Join(roles.roles), o.tenant)
			return nil
		},
	}
	o.flags(add, "an admin of the tenant")
	add.Flags().StringVar(&newUser, "new-user", "", "the user to add (required)")
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "the new user's password (else RED_NEW_PASSWORD, else a prompt)")
	add.Flags().Var(&roles, "role", "the new user's roles, comma-separated or repeated: physician, assistant, pharmacist, admin (required)")
	_ = add.MarkFlagRequired("new-user")
	_ = add.MarkFlagRequired("role")
	c.AddCommand(add, e.userRoleCmd(), e.userListCmd())
	return c
}

func (e *env) passwdCmd() *cobra.Command {
	var tenant, user, pwFile, newPwFile string
	c := &cobra.Command{
		Use:   "passwd --tenant ALIAS --user NAME",
		Short: "change a user's password (the keys are wrapped again; no data is re-encrypted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.rewrap(cmd, tenant, user, pwFile, newPwFile)
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

// rewrap unwraps user's credential and stores it again under a new password.
func (e *env) rewrap(cmd *cobra.Command, tenant, user, pwFile, newPwFile string) error {
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
	pw, err := e.password(passwordSource{file: pwFile, envVar: "RED_PASSWORD", prompt: "Password of " + user}, false)
	if err != nil {
		return err
	}
	defer wipe(pw)
	newPw, err := e.password(passwordSource{file: newPwFile, envVar: "RED_NEW_PASSWORD", prompt: "New password for " + user}, true)
	if err != nil {
		return err
	}
	defer wipe(newPw)
	blob, err := vault.Rewrap(rand.Reader, tenant, user, cred.Blob, pw, user, newPw, e.kdf)
	if errors.Is(err, vault.ErrBadPassword) {
		return errLogin
	}
	if err != nil {
		return err
	}
	if err := st.PutCredential(ctx, storage.Credential{Tenant: tenant, User: user, Blob: blob}); err != nil {
		return err
	}
	fmt.Fprintf(e.io.Out, "changed the password of %s in tenant %s\n", user, tenant)
	return nil
}
