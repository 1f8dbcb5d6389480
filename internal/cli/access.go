package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/users"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// rolesFlag is --role: roles comma-separated, or the flag repeated; the first one given replaces
// the default.
type rolesFlag struct {
	roles []access.Role
	set   bool
}

func (f *rolesFlag) String() string {
	if len(f.roles) == 0 {
		return ""
	}
	return access.Join(f.roles)
}
func (f *rolesFlag) Type() string { return "roles" }
func (f *rolesFlag) Set(s string) error {
	if !f.set {
		f.roles, f.set = nil, true
	}
	for _, name := range strings.Split(s, ",") {
		r, err := access.ParseRole(name)
		if err != nil {
			return err
		}
		f.roles = append(f.roles, r)
	}
	var err error
	f.roles, err = users.NormalRoles(f.roles) // once each, in red's order
	return err
}

// defaultWorkstation is this machine's name, as the principal names the workstation.
func defaultWorkstation() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// loginOptions are the flags of a command a user of a tenant logs in to.
type loginOptions struct {
	tenant, user, pwFile string
}

func (o *loginOptions) flags(c *cobra.Command, who string) {
	c.Flags().StringVar(&o.tenant, "tenant", "", "tenant alias (required)")
	c.Flags().StringVar(&o.user, "user", "", who+" (required)")
	c.Flags().StringVar(&o.pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt)")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
}

// loggedIn is a user logged in to a tenant on the command line: the store, the tenant's vault
// unsealed, its directory of users, groups and tokens, and who the user is.
type loggedIn struct {
	st  storage.Store
	v   *vault.Vault
	dir *users.Directory
	who access.Principal
	// trail is an admin's session of the audit trail (asAdmin): the directory's changes are
	// committed with their events
	trail *audit.Trail
	log   *slog.Logger
}

func (l *loggedIn) close() {
	if l.trail != nil {
		closeTrail(l.trail, "end of command", l.log)
	}
	l.v.Lock()
	l.st.Close()
}

// logIn opens the store and logs the user in (the password from --password-file, RED_PASSWORD
// or a prompt); the caller closes what it returns.
func (e *env) logIn(ctx context.Context, o loginOptions) (*loggedIn, error) {
	st, pw, err := e.login(ctx, o.tenant, o.user, o.pwFile)
	if err != nil {
		return nil, err
	}
	v, err := e.unlock(ctx, st, o.tenant, o.user, pw)
	wipe(pw)
	if err != nil {
		st.Close()
		return nil, err
	}
	l := &loggedIn{st: st, v: v, dir: users.New(o.tenant, v.Barrier(st), st)}
	if l.who, err = l.dir.Principal(ctx, o.user, defaultWorkstation()); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// asAdmin logs the user in, who must be an admin of the tenant to do what, and opens a session
// of the audit trail for command (its login event), in which the directory's changes are
// recorded.
func (e *env) asAdmin(ctx context.Context, o loginOptions, what, command string) (*loggedIn, error) {
	l, err := e.logIn(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := access.Require(access.With(ctx, l.who), what, access.Admin); err != nil {
		l.close()
		return nil, err
	}
	barrier := l.v.Barrier(l.st)
	l.trail, err = audit.Start(access.With(ctx, l.who), barrier, audit.Options{Tenant: o.tenant, User: o.user, Workstation: l.who.Workstation, Command: command})
	if err != nil {
		l.close()
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	l.log = slog.New(slog.NewTextHandler(e.io.Err, nil))
	l.dir.Commits = l.trail.Wrap(barrier)
	return l, nil
}

// directoryCmd is a command on the tenant's directory of users, groups and tokens, with args;
// what names what it does when only an admin may, "" when any user may.
func (e *env) directoryCmd(use, short, what string, args cobra.PositionalArgs, run func(ctx context.Context, l *loggedIn, args []string) error) *cobra.Command {
	var o loginOptions
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			logIn := e.logIn
			if what != "" {
				logIn = func(ctx context.Context, o loginOptions) (*loggedIn, error) {
					return e.asAdmin(ctx, o, what, cmd.CommandPath())
				}
			}
			l, err := logIn(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer l.close()
			return run(access.With(cmd.Context(), l.who), l, args)
		},
	}
	who := "user name"
	if what != "" {
		who = "an admin of the tenant"
	}
	o.flags(c, who)
	return c
}

// table writes rows of tab-separated cells under head, in aligned columns.
func (e *env) table(head string, rows []string) error {
	w := tabwriter.NewWriter(e.io.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, head)
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
	return w.Flush()
}

func (e *env) userRoleCmd() *cobra.Command {
	var roles rolesFlag
	c := e.directoryCmd("role USER --tenant ALIAS --user ADMIN --role ROLE[,ROLE]", "set a user's roles (replacing those they had)",
		"changing a user's roles", cobra.ExactArgs(1), func(ctx context.Context, l *loggedIn, args []string) error {
			if err := l.dir.SetRoles(ctx, args[0], roles.roles); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "user %s: %s (a running red serve applies it within seconds)\n", args[0], access.Join(roles.roles))
			return nil
		})
	c.Flags().Var(&roles, "role", "the roles, comma-separated or repeated: physician, assistant, pharmacist, admin (required)")
	_ = c.MarkFlagRequired("role")
	return c
}

func (e *env) userListCmd() *cobra.Command {
	return e.directoryCmd("list --tenant ALIAS --user NAME", "list the tenant's users with their roles (any user's login)", "", cobra.NoArgs,
		func(ctx context.Context, l *loggedIn, _ []string) error {
			us, err := l.dir.Users(ctx)
			if err != nil {
				return err
			}
			rows := make([]string, len(us))
			for i, u := range us {
				roles := access.Join(u.Roles)
				switch {
				case u.Legacy:
					roles = "every role (added before red knew roles; an admin sets them with red user role)"
				case len(u.Roles) == 0:
					roles = "none: refused everything until an admin sets them with red user role"
				}
				rows[i] = u.Name + "\t" + roles
			}
			return e.table("USER\tROLES", rows)
		})
}

func (e *env) groupCmd() *cobra.Command {
	c := &cobra.Command{Use: "group", Short: "manage the tenant's user groups (an admin's login; list: any user's)"}
	var name string
	add := e.directoryCmd("add ID --tenant ALIAS --user ADMIN [--name NAME]", "create a user group; its id is what a Provenance names (e.g. base_user_group_admin)",
		"managing user groups", cobra.ExactArgs(1), func(ctx context.Context, l *loggedIn, args []string) error {
			if err := l.dir.AddGroup(ctx, args[0], name); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "created group %s\n", args[0])
			return nil
		})
	add.Flags().StringVar(&name, "name", "", "the group's name for people")
	remove := e.directoryCmd("remove ID --tenant ALIAS --user ADMIN", "remove a user group", "managing user groups", cobra.ExactArgs(1),
		func(ctx context.Context, l *loggedIn, args []string) error {
			if err := l.dir.RemoveGroup(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "removed group %s\n", args[0])
			return nil
		})
	member := &cobra.Command{Use: "member", Short: "add users to a group or take them out"}
	member.AddCommand(
		e.directoryCmd("add GROUP USER --tenant ALIAS --user ADMIN", "make a user a member of a group", "managing user groups", cobra.ExactArgs(2),
			func(ctx context.Context, l *loggedIn, args []string) error {
				changed, err := l.dir.AddMember(ctx, args[0], args[1])
				return e.membership(err, changed, "%s is a member of group %s", "%s was a member of group %s already", args)
			}),
		e.directoryCmd("remove GROUP USER --tenant ALIAS --user ADMIN", "take a user out of a group", "managing user groups", cobra.ExactArgs(2),
			func(ctx context.Context, l *loggedIn, args []string) error {
				changed, err := l.dir.RemoveMember(ctx, args[0], args[1])
				return e.membership(err, changed, "%s is no longer a member of group %s", "%s was no member of group %s", args)
			}))
	c.AddCommand(add, remove, member, e.groupListCmd())
	return c
}

// membership reports a change of group membership (args: group, user).
func (e *env) membership(err error, changed bool, done, already string, args []string) error {
	if err != nil {
		return err
	}
	msg := already
	if changed {
		msg = done
	}
	fmt.Fprintf(e.io.Out, msg+"\n", args[1], args[0])
	return nil
}

func (e *env) groupListCmd() *cobra.Command {
	return e.directoryCmd("list --tenant ALIAS --user NAME", "list the user groups with their members", "", cobra.NoArgs,
		func(ctx context.Context, l *loggedIn, _ []string) error {
			gs, err := l.dir.Groups(ctx)
			if err != nil {
				return err
			}
			rows := make([]string, len(gs))
			for i, g := range gs {
				rows[i] = g.ID + "\t" + g.Name + "\t" + strings.Join(g.Members, ", ")
			}
			return e.table("GROUP\tNAME\tMEMBERS", rows)
		})
}

func (e *env) tokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "manage the API tokens of the tenant's client programs (red serve --require-token; an admin's login)"}
	var name string
	add := e.directoryCmd("add --name CLIENT --tenant ALIAS --user ADMIN", "issue an API token for a client program; it is printed this once",
		"managing API tokens", cobra.NoArgs, func(ctx context.Context, l *loggedIn, _ []string) error {
			token, err := l.dir.AddToken(ctx, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.io.Err, "red: API token %s issued; it is shown only now (red keeps a keyed digest of it) — the client sends it as Authorization: Bearer <token>\n", name)
			fmt.Fprintln(e.io.Out, token)
			return nil
		})
	add.Flags().StringVar(&name, "name", "", "the client program's name, e.g. kasse-pvs (required)")
	_ = add.MarkFlagRequired("name")
	list := e.directoryCmd("list --tenant ALIAS --user ADMIN", "list the API tokens by name", "managing API tokens", cobra.NoArgs,
		func(ctx context.Context, l *loggedIn, _ []string) error {
			ts, err := l.dir.Tokens(ctx)
			if err != nil {
				return err
			}
			rows := make([]string, len(ts))
			for i, t := range ts {
				rows[i] = t.Name + "\t" + t.Created.Format(time.DateTime+" MST")
			}
			return e.table("TOKEN\tISSUED", rows)
		})
	remove := e.directoryCmd("remove NAME --tenant ALIAS --user ADMIN", "withdraw an API token", "managing API tokens", cobra.ExactArgs(1),
		func(ctx context.Context, l *loggedIn, args []string) error {
			if err := l.dir.RemoveToken(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.io.Out, "removed token %s (a running red serve refuses it within seconds)\n", args[0])
			return nil
		})
	c.AddCommand(add, list, remove)
	return c
}
