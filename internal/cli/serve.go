package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/api"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/guard"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/telematik"
	"github.com/redclone/red/internal/ui"
	"github.com/redclone/red/internal/users"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// DefaultPort is RED's port.
const DefaultPort = 29221

type serveOptions struct {
	tenant, user, pwFile string
	port                 int
	idleLock             time.Duration
	maxBody              int64
	ti                   tiOptions
	validation           validationFlag
	fhirMode             fhirModeFlag
	notify               notifyOptions
	workstation          string
	requireToken         bool
	command              string // "red serve" or "red demo", for the audit trail's login event
}

// fhirModeFlag is --fhir-mode: red or strict.
type fhirModeFlag string

func (f *fhirModeFlag) String() string {
	if *f == "" {
		return api.ModeRED
	}
	return string(*f)
}
func (f *fhirModeFlag) Type() string { return "red|strict" }
func (f *fhirModeFlag) Set(s string) error {
	if s != api.ModeRED && s != api.ModeStrict {
		return fmt.Errorf("--fhir-mode is red or strict, not %q", s)
	}
	*f = fhirModeFlag(s)
	return nil
}

func (o *serveOptions) flags(c *cobra.Command) {
	f := c.Flags()
	f.IntVar(&o.port, "port", DefaultPort, "port on 127.0.0.1 (0 picks a free one)")
	f.DurationVar(&o.idleLock, "idle-lock", 0, "wipe the keys and stop listening after this much inactivity (0: never)")
	f.Int64Var(&o.maxBody, "max-body", fhir.DefaultLimits.MaxBytes, "largest request body in bytes")
	f.Var(&o.fhirMode, "fhir-mode", "red (default): RED's answers; strict: the FHIR specification's (standard searchset links, Task Bundles, OperationOutcome for every error, 201 Created); a request's Prefer: handling=strict or lenient overrides it")
	f.Var(&o.validation, "validation", "profile (default): plausibility findings are warnings; strict: they refuse the bundle (overrides the tenant's setting, red config)")
	f.StringVar(&o.workstation, "workstation", defaultWorkstation(), "this workstation's name, as every request's principal names it")
	f.BoolVar(&o.requireToken, "require-token", false, "refuse API requests without a valid API token (Authorization: Bearer <token>; red token add issues one); the signing page keeps its own session")
	o.ti.flags(c)
	o.notify.flags(c)
}

func (e *env) serveCmd() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve --tenant ALIAS --user NAME",
		Short: "log in, unlock the tenant's keys and serve the API on 127.0.0.1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			signed, err := e.prepareTI(o.ti)
			if err != nil {
				return err
			}
			defer signed.Close()
			st, pw, err := e.login(ctx, o.tenant, o.user, o.pwFile)
			if err != nil {
				return err
			}
			defer st.Close()
			o.command = "red serve"
			return e.serve(ctx, st, o, signed, pw, func(base string, _ *simulators) {
				fmt.Fprintf(e.io.Out, "red: tenant %s unlocked; listening on %s/%s\n", o.tenant, base, o.tenant)
			})
		},
	}
	c.Flags().StringVar(&o.tenant, "tenant", "", "tenant alias (required)")
	c.Flags().StringVar(&o.user, "user", "", "user name (required)")
	c.Flags().StringVar(&o.pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt) — RED's automatic login")
	o.flags(c)
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}

// serve unlocks the vault with pw (wiping pw), and only then listens; it returns when ctx ends or
// the idle lock fires, with the keys wiped either way. signed is what prepareTI opened.
func (e *env) serve(ctx context.Context, st storage.Store, o serveOptions, signed *telematik.SignedPDFs, pw []byte, ready func(base string, sims *simulators)) error {
	defer wipe(pw)
	tuneGC()
	v, err := e.unlock(ctx, st, o.tenant, o.user, pw)
	if err != nil {
		return err
	}
	defer v.Lock()
	// after unlocking, whose key derivation alone takes 64 MiB
	defer api.KeepMemoryUnder(api.KeepMemoryUnder(e.servedMemory()))
	mode, from, err := validationMode(ctx, v.Barrier(st), o.validation)
	if err != nil {
		return err
	}
	session, err := e.session(ctx, st, v, o)
	if err != nil {
		return err
	}

	sims, err := startSimulators(o.ti.simDir, o.ti, [3]int{})
	if err != nil {
		return err
	}
	defer sims.close()
	for _, sim := range []struct{ name, url string }{{"Konnektor", sims.konnektor}, {"E-Rezept-Fachdienst", sims.fachdienst}, {"ePA", sims.epa}} {
		if sim.url != "" {
			fmt.Fprintf(e.io.Out, "red: %s simulator at %s\n", sim.name, sim.url)
		}
	}
	if signed != nil {
		fmt.Fprintf(e.io.Out, "red: $signpdf saves signatures (filepath) as new files in %s only\n", signed.Dir())
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)))
	if addrInUse(err) {
		return fmt.Errorf("port %d on 127.0.0.1 is taken (another red still running?): stop that program, or choose another port with --port (--port 0 picks a free one)", o.port)
	}
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d: %w", o.port, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	limits := fhir.DefaultLimits
	limits.MaxBytes = o.maxBody
	logs := newLogBatch(e.io.Err)
	defer logs.Flush()
	log := slog.New(slog.NewTextHandler(logs, nil))
	barrier := v.Barrier(st)
	trail, err := audit.Start(ctx, barrier, audit.Options{Tenant: o.tenant, User: o.user, Workstation: o.workstation, Command: o.command, Log: log})
	if err != nil {
		ln.Close()
		return fmt.Errorf("open the audit trail: %w", err)
	}
	notes := o.notify.service(o.tenant, barrier, log)
	recs := &records.Service{Tenant: o.tenant, Store: trail.Wrap(notes.Wrap(barrier)), Validation: mode, Groups: userGroups{session.Dir}}
	fmt.Fprintf(e.io.Out, "red: validation %s (%s)\n", mode, from)
	ti := telematikService(o.ti, sims, o.user, recs, signed)
	ti.Prescriptions, ti.Records, ti.Announce = recs.Store, recs, notes.Announce
	page, err := ui.New(ui.Options{Tenant: o.tenant, TI: trail.UI(ti), Log: log})
	if err != nil {
		ln.Close()
		closeTrail(trail, "start failed", log)
		return err
	}
	handler := (&api.Server{
		Tenant:  o.tenant,
		Records: trail.Records(recs),
		Tenants: st,
		TI:      trail.Telematik(ti),
		UI:      page,
		Limits:  limits,
		Log:     log,
		Port:    port,
		Touch:   func() { last.Store(time.Now().UnixNano()) },
		Version: Version,
		// FHIRMode: RED's shapes unless --fhir-mode strict
		FHIRMode:      string(o.fhirMode),
		Subscriptions: notes,
		Access:        trail.Access(session),
		AuditEvents:   trail,
	}).Handler()
	srv := guard.APIBounds.Server(handler)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(guard.APIBounds.Listener(ln)) }()
	defer e.writeClientToken(o.tenant, port, page.ClientToken())()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	fmt.Fprintf(e.io.Out, "red: e-prescriptions to sign: %s/%s/ui/ (or red erp sign --tenant %s --port %d)\n", base, o.tenant, o.tenant, port)
	stopNotes := o.notify.run(ctx, notes)
	defer stopNotes()
	ready(base, sims)

	var idle <-chan time.Time
	if o.idleLock > 0 {
		t := time.NewTicker(min(max(o.idleLock/4, 10*time.Millisecond), 5*time.Second))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-ctx.Done():
			err := shutdown(srv, v, page, func() { closeTrail(trail, "stopped", log) })
			fmt.Fprintln(e.io.Out, "red: server stopped; keys wiped and port closed")
			return err
		case err := <-served:
			stopBatch(page)
			closeTrail(trail, "server failed", log)
			v.Lock()
			return fmt.Errorf("server stopped: %w", err)
		case <-idle:
			if time.Since(time.Unix(0, last.Load())) >= o.idleLock {
				err := shutdown(srv, v, page, func() { closeTrail(trail, "idle lock", log) })
				fmt.Fprintf(e.io.Out, "red: no requests for %s; keys wiped and port closed — log in again to continue\n", o.idleLock)
				return err
			}
		}
	}
}

// session is who acts on this server (the logged-in user at this workstation, their roles and
// groups), read now and kept current while it serves.
func (e *env) session(ctx context.Context, st storage.Store, v *vault.Vault, o serveOptions) (*users.Session, error) {
	if o.workstation == "" {
		return nil, fmt.Errorf("--workstation: name this workstation")
	}
	s := &users.Session{Dir: users.New(o.tenant, v.Barrier(st), st), User: o.user, Workstation: o.workstation, RequireToken: o.requireToken}
	who, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	groups := strings.Join(who.Groups, ", ")
	if groups == "" {
		groups = "none"
	}
	fmt.Fprintf(e.io.Out, "red: logged in as %s at workstation %s; roles %s; groups %s\n", who.User, who.Workstation, access.Join(who.Roles), groups)
	if o.requireToken {
		ts, err := s.Dir.Tokens(ctx)
		if err != nil {
			return nil, err
		}
		msg := "API requests need an API token (Authorization: Bearer <token>); the signing page keeps its own session"
		if len(ts) == 0 {
			msg += " — the tenant has none yet: an admin issues one with red token add --name CLIENT"
		}
		fmt.Fprintf(e.io.Out, "red: %s\n", msg)
	}
	return s, nil
}

// shutdown stops a running e-prescription batch, stops accepting, lets running requests finish
// (10 s at most), runs before (the audit trail's close) and wipes the keys.
func shutdown(srv *http.Server, v *vault.Vault, page *ui.Handler, before func()) error {
	stopBatch(page)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	before()
	v.Lock()
	return err
}

// closeTrail writes the audit events still queued and closes the session's chains, saying why
// (10 s at most); a failure is logged, and red audit verify will name the chains unclosed.
func closeTrail(t *audit.Trail, why string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.Close(ctx, why); err != nil {
		log.Error("closing the audit trail failed", "err", err)
	}
}

// stopBatch cancels a running e-prescription batch and waits for it (5 s at most) to store
// where it got, before the keys are wiped.
func stopBatch(page *ui.Handler) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = page.Close(ctx)
}

// servedMemory is the Go runtime's soft memory limit while red serves and no large body is in
// flight (GOMEMLIMIT overrides it). Serving reads, red's live heap is a few MB, and GOGC's 400 %
// let garbage grow to some 40 MB; under this limit the runtime collects sooner only as it nears.
// make load, PostgreSQL, 8 clients: with 32 MiB the collector ran all the time under creates
// (404 creates/s at 2.9 ms of processor time each); with 64 MiB 912/s at 0.9 ms and a peak
// resident set of 88 MB; without a limit 811/s and 262 MB. The embedded store's page caches and
// its driver's memory lie outside Go's heap: with SQLite 56 MiB keep the resident set at 96 MB
// where 64 MiB let it reach 103, creating as fast (399/s against 367/s at 8 clients).
func (e *env) servedMemory() int64 {
	if e.databaseURL == "" {
		return 56 << 20
	}
	return 64 << 20
}

// tuneGC collects garbage less often unless GOGC says otherwise: parsing XML allocates much
// short-lived memory on a small live heap, and collecting less often costs a few MB and saves
// about a quarter of the CPU per bundle (BenchmarkLoad).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
