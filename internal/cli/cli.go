// Package cli is the red command line: init, user, group, token, passwd, config, serve, import
// and demo, wired to the store, the vault and the API.
package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres"
	"github.com/redclone/red/storage/sqlite"
)

// Version is set at build time.
var Version = "dev"

// IO is where a command reads passwords and writes messages.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// env holds what every command shares.
type env struct {
	io          IO
	dataDir     string
	databaseURL string
	kdf         vault.KDFParams
}

// Run executes red with args (without the program name) and returns the error to exit with.
func Run(ctx context.Context, args []string, stdio IO) error {
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	return root.ExecuteContext(ctx)
}

func newRoot(stdio IO) *cobra.Command {
	e := &env{io: stdio, kdf: vault.DefaultKDF}
	root := &cobra.Command{
		Use:           "red",
		Short:         "red — a local FHIR interchange server in the manner of the RED interchange API",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.dataDir, "data-dir", defaultDataDir(), "directory of the embedded store (red.db)")
	pf.StringVar(&e.databaseURL, "database-url", os.Getenv("RED_DATABASE_URL"), "PostgreSQL URL; the embedded store when empty (env RED_DATABASE_URL)")
	pf.Uint32Var(&e.kdf.Time, "kdf-time", vault.DefaultKDF.Time, "Argon2id passes for new or changed passwords")
	pf.Uint32Var(&e.kdf.MemoryKiB, "kdf-memory", vault.DefaultKDF.MemoryKiB, "Argon2id memory in KiB for new or changed passwords")
	pf.Uint8Var(&e.kdf.Threads, "kdf-threads", vault.DefaultKDF.Threads, "Argon2id parallelism for new or changed passwords")
	for _, name := range []string{"kdf-time", "kdf-memory", "kdf-threads"} {
		_ = pf.MarkHidden(name)
	}
	root.AddCommand(e.initCmd(), e.userCmd(), e.groupCmd(), e.tokenCmd(), e.passwdCmd(), e.configCmd(), e.serveCmd(), e.demoCmd(), e.tiSimCmd(), e.erpCmd(), e.importCmd(), e.auditCmd())
	return root
}

// openStore opens PostgreSQL when a URL is given, else the embedded store in the data directory.
// Only init and demo create a store (create); the other commands need red's data to be there
// already and say so, creating nothing, when it is not — a mistyped --data-dir or database name
// must not turn into an empty store and a puzzling failed login.
func (e *env) openStore(ctx context.Context, create bool) (storage.Store, error) {
	if e.databaseURL != "" {
		if err := e.checkPostgres(ctx, create); err != nil {
			return nil, err
		}
		s, err := postgres.Open(ctx, e.databaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return s, nil
	}
	db := filepath.Join(e.dataDir, "red.db")
	if !create {
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return nil, e.errNoData()
		}
	} else if err := os.MkdirAll(e.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s, err := sqlite.Open(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	return s, nil
}

// checkPostgres connects once before the store is opened (which would create red's tables): a
// database that does not exist, or (unless create) one without red's tables, gets a message
// that says so.
func (e *env) checkPostgres(ctx context.Context, create bool) error {
	conn, err := pgx.Connect(ctx, e.databaseURL)
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "3D000" { // invalid_catalog_name
			return fmt.Errorf("%s does not exist: create the database first (createdb), red creates its tables in it", e.where())
		}
		return fmt.Errorf("open PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if create {
		return nil
	}
	var ours bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('tenants') IS NOT NULL AND to_regclass('credentials') IS NOT NULL").Scan(&ours); err != nil {
		return fmt.Errorf("open PostgreSQL: %w", err)
	}
	if !ours {
		return e.errNoData()
	}
	return nil
}

// errNoData says that there is no red data where this command looks, and how to create some.
func (e *env) errNoData() error {
	return fmt.Errorf("no red data in %s: create a tenant there with \"%s init --tenant ALIAS --user NAME\", or the demo tenant with \"%s demo\"%s",
		e.where(), e.command(), e.command(), e.orElse())
}

// command is how to call red for the same data: with --data-dir when not the default one, and
// with --database-url (its value left out: it may hold a password).
func (e *env) command() string {
	switch {
	case e.databaseURL != "" && os.Getenv("RED_DATABASE_URL") == e.databaseURL:
		return "red"
	case e.databaseURL != "":
		return "red --database-url URL"
	case e.dataDir != defaultDataDir():
		return "red --data-dir " + shellQuote(e.dataDir)
	}
	return "red"
}

// orElse hints at the other place data may be.
func (e *env) orElse() string {
	if e.databaseURL != "" {
		return " — or check the database name in the URL"
	}
	return " — or give --data-dir the directory that holds red.db (or --database-url for PostgreSQL)"
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// where names the store for messages: the embedded file, or the PostgreSQL database without
// user and password.
func (e *env) where() string {
	if e.databaseURL != "" {
		cfg, err := pgconn.ParseConfig(e.databaseURL)
		if err != nil {
			return "PostgreSQL"
		}
		return fmt.Sprintf("PostgreSQL database %q on %s", cfg.Database, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	}
	return filepath.Join(e.dataDir, "red.db")
}

// errLogin is what a failed login says, whichever of user or password was wrong.
var errLogin = errors.New("wrong tenant, user name or password")

// credential loads a user's credential. A tenant that does not exist is named (its alias is no
// secret to whoever can open the store); a missing user reads as a failed login.
func (e *env) credential(ctx context.Context, st storage.Store, tenant, user string) (storage.Credential, error) {
	if _, err := st.Tenant(ctx, tenant); errors.Is(err, storage.ErrNotFound) {
		how := fmt.Sprintf("\"%s init --tenant %s --user NAME\"", e.command(), shellQuote(tenant))
		if tenant == demoTenant {
			how = fmt.Sprintf("\"%s demo\"", e.command())
		}
		return storage.Credential{}, fmt.Errorf("there is no tenant %q in %s: create it with %s", tenant, e.where(), how)
	} else if err != nil {
		return storage.Credential{}, err
	}
	c, err := st.Credential(ctx, tenant, user)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errLogin
	}
	return c, err
}

// login opens the store, which must hold red's data, and reads user's password for tenant (from
// pwFile, RED_PASSWORD or a prompt).
func (e *env) login(ctx context.Context, tenant, user, pwFile string) (storage.Store, []byte, error) {
	st, err := e.openStore(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	pw, err := e.password(passwordSource{file: pwFile, envVar: "RED_PASSWORD", prompt: "Password of " + user + " in " + tenant}, false)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, pw, nil
}

// unlock logs user in to tenant: the vault unsealed with the user's credential and pw, or
// errLogin for a wrong user or password.
func (e *env) unlock(ctx context.Context, st storage.Store, tenant, user string, pw []byte) (*vault.Vault, error) {
	cred, err := e.credential(ctx, st, tenant, user)
	if err != nil {
		return nil, err
	}
	v := vault.New(tenant, rand.Reader)
	if err := v.Unseal(user, cred.Blob, pw); err != nil {
		if errors.Is(err, vault.ErrBadPassword) {
			return nil, errLogin
		}
		return nil, err
	}
	// The key derivation's memory (64 MiB at vault.DefaultKDF) is garbage now, but a collection
	// while it was in use counted it in the next heap goal: with tuneGC's GOGC of 400 %, about
	// 320 MiB, which the first seconds of a load would fill before memory is collected again
	// (issue #12). A collection now bases the goal on what stays, and returns those pages.
	debug.FreeOSMemory()
	return v, nil
}
