// Command redload measures red under load the way issue #12 tabulates it (make load): it starts
// red itself on a free loopback port with a fresh tenant, seeds it with Patientenakte bundles
// (testdata/load), and runs fixed-duration phases of read by id, identifier search and create at
// 1 and 8 concurrent keep-alive clients with wrk (-driver go: with its own Go clients instead),
// each phase several times; it prints the medians as a Markdown table and writes the table to a
// file as well.
//
//	go run ./tools/redload -store both -seconds 20
//
// With -ceilings it measures too what the machine does without red's work under the same load
// (make ceiling: that alone, -store none): static answers to the read phase and each store alone
// committing the create phase's writes (internal/loadgen's Ceilings).
//
// PostgreSQL: a throwaway database on the server of -database-url (default RED_TEST_DATABASE_URL,
// else postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards; with -store both and no
// server answering, the embedded store alone is measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redclone/red/internal/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redload:", err)
		os.Exit(1)
	}
}

func run() error {
	dbDefault := os.Getenv("RED_TEST_DATABASE_URL")
	if dbDefault == "" {
		dbDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	var (
		red      = flag.String("red", "", "the red binary (default: build ./cmd/red into a temporary directory)")
		store    = flag.String("store", "both", "sqlite, postgres, both or none (with -ceilings: the ceilings alone)")
		ceilings = flag.Bool("ceilings", false, "measure too what the machine does without red's work: static answers to the read phase, and each store alone committing the create phase's writes")
		dbURL    = flag.String("database-url", dbDefault, "PostgreSQL server to create a throwaway database on")
		dataDir  = flag.String("data", filepath.Join("testdata", "load"), "the templates of the patients")
		patients = flag.Int("patients", 10_000, "patients seeded before the phases")
		seedC    = flag.Int("seed-clients", 4, "concurrent clients of the seed")
		seconds  = flag.Float64("seconds", 20, "duration of each phase in seconds")
		repeat   = flag.Int("repeat", 3, "runs of each phase (the report gives medians)")
		clients  = flag.String("clients", "1,8", "numbers of concurrent clients, comma-separated")
		out      = flag.String("out", filepath.Join("bin", "load-report.md"), "file the report is written to as well")
		driver   = flag.String("driver", "wrk", "what makes the phases' requests: wrk (on PATH), or go (redload's own clients, which take a share of the processors red runs on)")
	)
	flag.Parse()
	c := loadgen.Config{Red: *red, Patients: *patients, SeedClients: *seedC, Repeat: *repeat,
		Duration: time.Duration(*seconds * float64(time.Second)), Progress: os.Stderr}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-clients %q: want whole numbers from 1, comma-separated", *clients)
		}
		c.Clients = append(c.Clients, n)
	}
	if c.Patients < 1 || c.SeedClients < 1 || c.Repeat < 1 || c.Duration <= 0 {
		return fmt.Errorf("-patients, -seed-clients, -repeat and -seconds must be positive")
	}
	stores, ok := map[string][]string{"both": {"postgres", "sqlite"}, "sqlite": {"sqlite"}, "postgres": {"postgres"}, "none": nil}[*store]
	if !ok || (stores == nil && !*ceilings) {
		return fmt.Errorf("-store %q: want sqlite, postgres, both, or none with -ceilings", *store)
	}
	switch *driver {
	case "wrk":
		bin, err := exec.LookPath("wrk")
		if err != nil {
			return fmt.Errorf("-driver wrk: %w (apt-get install wrk, or -driver go)", err)
		}
		dir, err := os.MkdirTemp("", "redload-wrk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.Wrk = &loadgen.Wrk{Bin: bin, Dir: dir}
	case "go":
	default:
		return fmt.Errorf("-driver %q: want wrk or go", *driver)
	}
	var err error
	if c.Data, err = loadgen.ReadData(*dataDir); err != nil {
		return fmt.Errorf("%w (run from the repository's root, or set -data)", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Red == "" && len(stores) > 0 {
		tmp, err := os.MkdirTemp("", "redload-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		c.Red = filepath.Join(tmp, "red")
		build := exec.CommandContext(ctx, "go", "build", "-o", c.Red, "./cmd/red")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/red: %w", err)
		}
	}

	alone := stores // the stores the ceilings measure
	if *store == "both" || *store == "none" {
		alone = []string{"postgres", "sqlite"}
		if err := loadgen.PingPostgres(ctx, *dbURL); err != nil {
			fmt.Fprintf(os.Stderr, "redload: %v\nredload: measuring the embedded store only (RED_TEST_DATABASE_URL or -database-url names a server)\n", err)
			alone = []string{"sqlite"}
		}
		if *store == "both" {
			stores = alone
		}
	}
	started := time.Now()
	var reps []loadgen.StoreReport
	for _, s := range stores {
		u := ""
		if s == "postgres" {
			u = *dbURL
		}
		rep, err := loadgen.Run(ctx, c, s, u)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		reps = append(reps, rep)
	}
	var table string
	if len(reps) > 0 {
		table = loadgen.Markdown(c, reps, started, loadgen.Machine())
	}
	if *ceilings {
		rep, err := loadgen.Ceilings(ctx, c, alone, *dbURL)
		if err != nil {
			return fmt.Errorf("ceilings: %w", err)
		}
		if table != "" {
			table += "\n"
		} else {
			table = fmt.Sprintf("Measured %s on %s.\n\n", started.Format("2006-01-02 15:04"), loadgen.Machine())
		}
		table += loadgen.CeilingMarkdown(c, rep)
	}
	fmt.Print("\n" + table)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "redload: the table is in %s as well\n", *out)
	}
	return nil
}
