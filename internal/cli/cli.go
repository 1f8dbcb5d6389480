// Package cli is the red command line: init, user add, passwd, serve and demo, wired to the store,
// the vault and the API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

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
	root.AddCommand(e.initCmd(), e.userCmd(), e.passwdCmd(), e.serveCmd(), e.demoCmd(), e.tiSimCmd())
	return root
}

// openStore opens PostgreSQL when a URL is given, else the embedded store in the data directory.
func (e *env) openStore(ctx context.Context) (storage.Store, error) {
	if e.databaseURL != "" {
		s, err := postgres.Open(ctx, e.databaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return s, nil
	}
	if err := os.MkdirAll(e.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s, err := sqlite.Open(ctx, filepath.Join(e.dataDir, "red.db"))
	if err != nil {
		return nil, fmt.Errorf("open embedded store: %w", err)
	}
	return s, nil
}

func (e *env) where() string {
	if e.databaseURL != "" {
		return "PostgreSQL"
	}
	return filepath.Join(e.dataDir, "red.db")
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "red")
	}
	switch runtime.GOOS {
	case "windows", "darwin":
		if d, err := os.UserConfigDir(); err == nil {
			return filepath.Join(d, "red")
		}
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "red")
	}
	return "red-data"
}

// errLogin is what a failed login says, whichever of tenant, user or password was wrong.
var errLogin = errors.New("wrong tenant, user name or password")

// credential loads a user's credential; a missing tenant or user reads as a failed login.
func credential(ctx context.Context, st storage.Store, tenant, user string) (storage.Credential, error) {
	c, err := st.Credential(ctx, tenant, user)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errLogin
	}
	return c, err
}
