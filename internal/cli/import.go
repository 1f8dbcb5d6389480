package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/users"
)

type importOptions struct {
	tenant, user, pwFile string
	report               string
	workers, batch       int
	maxBody              int64
	validation           validationFlag
	every                time.Duration // progress lines when stderr is no terminal
}

func (e *env) importCmd() *cobra.Command {
	var o importOptions
	c := &cobra.Command{
		Use:   "import --tenant ALIAS --user NAME PATH…",
		Short: "import KBV AWS Patientenakte bundles from files, folders and zip archives",
		Long: "import stores the bundles under each PATH as POST /{tenant}/Bundle would, with the same checks\n" +
			"and sealing: a file, a folder (its *.xml and *.zip files, recursively) or a zip archive (its *.xml\n" +
			"entries, read in memory). Bundles are checked in parallel and committed many at once, in the\n" +
			"order of the paths, then of the names. A refused bundle stores nothing and is listed with its\n" +
			"issues in the report; the import goes on. Each imported bundle is journalled in the same commit\n" +
			"as its resources: run the same import again after an interruption, and it skips what is stored.\n" +
			"Safe beside a running red serve on the same data: both commit with version checks.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			return e.importBundles(cmd.Context(), o, paths)
		},
	}
	f := c.Flags()
	f.StringVar(&o.tenant, "tenant", "", "tenant alias (required)")
	f.StringVar(&o.user, "user", "", "user name (required)")
	f.StringVar(&o.pwFile, "password-file", "", "read the password from this file (else RED_PASSWORD, else a prompt)")
	f.StringVar(&o.report, "report", "", "write the refused bundles and their issues to this file (default: a new file in <data-dir>/imports)")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "bundles checked in parallel")
	f.IntVar(&o.batch, "batch", 200, "bundles committed together at most")
	f.Int64Var(&o.maxBody, "max-body", fhir.DefaultLimits.MaxBytes, "largest bundle in bytes, as red serve --max-body")
	f.Var(&o.validation, "validation", "profile (default): plausibility findings are warnings; strict: they refuse the bundle (overrides the tenant's setting, red config)")
	f.DurationVar(&o.every, "progress-every", 10*time.Second, "how often a progress line is written when stderr is no terminal")
	_ = f.MarkHidden("progress-every")
	_ = c.MarkFlagRequired("tenant")
	_ = c.MarkFlagRequired("user")
	return c
}

// importBundles logs in, imports every source under paths and reports what was refused.
func (e *env) importBundles(ctx context.Context, o importOptions, paths []string) error {
	if o.workers < 1 || o.batch < 1 {
		return errors.New("--workers and --batch are whole numbers from 1")
	}
	sources, closeSources, err := importSources(paths)
	if err != nil {
		return err
	}
	defer closeSources()
	if len(sources) == 0 {
		return fmt.Errorf("no bundles to import under %s: red imports *.xml files, and the *.xml entries of *.zip archives", strings.Join(paths, ", "))
	}
	st, pw, err := e.login(ctx, o.tenant, o.user, o.pwFile)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := e.unlock(ctx, st, o.tenant, o.user, pw)
	wipe(pw)
	if err != nil {
		return err
	}
	defer v.Lock()
	tuneGC()
	mode, from, err := validationMode(ctx, v.Barrier(st), o.validation)
	if err != nil {
		return err
	}
	limits := fhir.DefaultLimits
	limits.MaxBytes = o.maxBody
	store := v.Barrier(st)
	who, err := users.New(o.tenant, store, st).Principal(ctx, o.user, defaultWorkstation())
	if err != nil {
		return err
	}
	ctx = access.With(ctx, who)
	trail, err := audit.Start(ctx, store, audit.Options{Tenant: o.tenant, User: o.user, Workstation: who.Workstation, Command: "red import"})
	if err != nil {
		return fmt.Errorf("open the audit trail: %w", err)
	}
	defer closeTrail(trail, "end of command", slog.New(slog.NewTextHandler(e.io.Err, nil)))
	before, err := readJournal(ctx, store)
	if err != nil {
		return err
	}
	rep := &importReport{path: o.report, dir: filepath.Join(e.dataDir, "imports"), tenant: o.tenant}
	im := &importer{
		recs:    &records.Service{Tenant: o.tenant, Store: trail.Wrap(store), Validation: mode, Groups: userGroups{users.New(o.tenant, store, st)}},
		before:  before,
		limits:  limits,
		workers: o.workers,
		batch:   o.batch,
		linger:  250 * time.Millisecond,
		now:     time.Now,
		refused: func(src importSource, issues fhir.Issues) {
			rep.add(src, issues)
			trail.Refused(ctx, "Bundle", "red import", fhir.Reject(issues))
		},
	}
	fmt.Fprintf(e.io.Out, "red: importing %d bundles into tenant %s (validation %s, %s; %d workers)\n", len(sources), o.tenant, mode, from, o.workers)
	start := time.Now()
	view := e.importView(im, len(sources), o.every)
	runErr := im.run(ctx, sources)
	view.stop()
	took := time.Since(start)
	summary := fmt.Sprintf("%d of %d bundles imported (%d resources) in %s: %.0f resources/s, %.0f bundles/s; %d already imported, %d refused",
		im.imported.Load(), len(sources), im.resources.Load(), took.Round(time.Millisecond),
		float64(im.resources.Load())/took.Seconds(), float64(im.imported.Load())/took.Seconds(), im.skipped.Load(), im.rejected.Load())
	if rep.err != nil {
		return fmt.Errorf("write the import report: %w", rep.err)
	}
	if err := rep.finish(summary, runErr); err != nil {
		return fmt.Errorf("write the import report: %w", err)
	}
	fmt.Fprintf(e.io.Out, "red: %s\n", summary)
	if rep.file != "" {
		fmt.Fprintf(e.io.Out, "red: report of the refused bundles: %s\n", rep.file)
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		return fmt.Errorf("import interrupted after %d of %d bundles: run the same command again to continue", im.done.Load(), len(sources))
	case runErr != nil:
		return fmt.Errorf("import stopped after %d of %d bundles (run the same command again to continue): %w", im.done.Load(), len(sources), runErr)
	case im.rejected.Load() > 0:
		return fmt.Errorf("%d of %d bundles refused: see %s", im.rejected.Load(), len(sources), rep.file)
	}
	return nil
}

// importReport lists the refused bundles with their issues, in a file created on the first
// refusal (mode 0600). It names each bundle by its path, as given, and quotes the issues of its
// OperationOutcome, which name the place of a problem and never a person's data.
type importReport struct {
	path, dir, tenant string
	file              string // the report's path, once created
	w                 *os.File
	err               error
}

func (r *importReport) add(src importSource, issues fhir.Issues) {
	if r.err != nil {
		return
	}
	if r.w == nil {
		if r.err = r.create(); r.err != nil {
			return
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "refused %s\n", src.name)
	for _, is := range issues {
		fmt.Fprintf(&b, "  %s %s", is.Severity, is.Code)
		if is.Expression != "" {
			fmt.Fprintf(&b, " at %s", is.Expression)
		}
		fmt.Fprintf(&b, ": %s\n", is.Diagnostics)
	}
	_, r.err = io.WriteString(r.w, b.String())
}

func (r *importReport) create() error {
	r.file = r.path
	if r.file == "" {
		if err := os.MkdirAll(r.dir, 0o700); err != nil {
			return err
		}
		r.file = filepath.Join(r.dir, "import-"+time.Now().UTC().Format("20060102-150405.000000")+".txt")
	}
	w, err := os.OpenFile(r.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	r.w = w
	_, err = fmt.Fprintf(w, "red import into tenant %s, started %s\n", r.tenant, time.Now().UTC().Format(time.RFC3339))
	return err
}

// finish closes the report with the summary; a report asked for by --report is written even
// when nothing was refused.
func (r *importReport) finish(summary string, runErr error) error {
	if r.w == nil && r.path == "" {
		return nil
	}
	if r.w == nil {
		if err := r.create(); err != nil {
			return err
		}
	}
	if runErr != nil {
		summary += "; the import stopped before the end"
	}
	_, err := fmt.Fprintf(r.w, "%s\n", summary)
	return errors.Join(err, r.w.Close())
}

// importView shows the import's progress on stderr: a bar with rates and the time left on a
// terminal, else a line every so often.
type importProgress interface{ stop() }

func (e *env) importView(im *importer, total int, every time.Duration) importProgress {
	if f, ok := e.io.Err.(*os.File); ok && isTerminal(f) {
		return startBar(f, im, total)
	}
	return startLines(e.io.Err, im, total, every)
}

// rates are what the progress shows besides the count.
func rates(im *importer, total int, start time.Time) string {
	el := time.Since(start).Seconds()
	done := im.done.Load()
	s := fmt.Sprintf("%.0f resources/s, %.0f bundles/s", float64(im.resources.Load())/el, float64(done)/el)
	if n := im.rejected.Load(); n > 0 {
		s += ", " + strconv.FormatInt(n, 10) + " refused"
	}
	if n := im.skipped.Load(); n > 0 {
		s += ", " + strconv.FormatInt(n, 10) + " already imported"
	}
	if done > 0 && int(done) < total {
		left := time.Duration(el * float64(int64(total)-done) / float64(done) * float64(time.Second))
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}

// ticking runs f every d until stop.
type ticking struct {
	quit chan struct{}
	done chan struct{}
}

func tick(d time.Duration, f func(), last func()) *ticking {
	t := &ticking{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				f()
			case <-t.quit:
				last()
				return
			}
		}
	}()
	return t
}

func (t *ticking) stop() {
	close(t.quit)
	<-t.done
}

func startLines(w io.Writer, im *importer, total int, every time.Duration) importProgress {
	start := time.Now()
	return tick(every, func() {
		fmt.Fprintf(w, "red: import %d/%d bundles, %s\n", im.done.Load(), total, rates(im, total, start))
	}, func() {})
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// startBar draws a bar of the bundles done, with the rates and the time left as its description.
func startBar(f *os.File, im *importer, total int) importProgress {
	start := time.Now()
	bar := progressbar.NewOptions(max(total, 1),
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionThrottle(200*time.Millisecond))
	update := func() {
		bar.Describe(rates(im, total, start))
		_ = bar.Set(int(im.done.Load()))
	}
	return tick(500*time.Millisecond, update, func() {
		update()
		fmt.Fprintln(f)
	})
}
