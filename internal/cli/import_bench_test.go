package cli_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/cli"
	"github.com/redclone/red/internal/loadgen"
	"github.com/redclone/red/storage/postgres/pgtest"
)

// BenchmarkImport measures red import on PostgreSQL with BenchmarkLoad's data: N patients
// (RED_BENCH_PATIENTS, default 100,000), each a Patientenakte bundle of Patient, Coverage,
// Encounter and Condition, after the bundle with the shared Practitioner, Organization and
// PractitionerRole — here as the entries of one zip archive, imported by one red import. It
// reports resources/s of the whole import (reading the archive, checks, sealing, commits), to
// compare with BenchmarkLoad's ingest-res/s over HTTP (goal: twice that). Run it once:
//
//	RED_BENCH_PATIENTS=10000 go test -run '^$' -bench BenchmarkImport -benchtime 1x -timeout 0 ./internal/cli/
//
// RED_BENCH_DATABASE_URL names an empty database to use (and keep) instead of a throwaway one;
// RED_BENCH_IMPORT_ARGS adds flags to red import (e.g. "--workers 4 --batch 500").
func BenchmarkImport(b *testing.B) {
	patients := loadEnvInt(b, "RED_BENCH_PATIENTS", 100_000)
	dbURL := os.Getenv("RED_BENCH_DATABASE_URL")
	if dbURL == "" {
		dbURL = pgtest.URL(b)
	}
	data := loadReadData(b)
	archive := filepath.Join(b.TempDir(), "archiv.zip")
	writeImportZip(b, archive, data, patients)
	in := newInstance(b, dbURL)
	in.initTenant("praxis", "anna", "pw")
	args := []string{"import", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"), "--report", filepath.Join(b.TempDir(), "report.txt")}
	args = append(args, strings.Fields(os.Getenv("RED_BENCH_IMPORT_ARGS"))...)
	var out bytes.Buffer
	cpu0, pg0, load0 := loadCPU(), loadPostgresCPU(), loadAvg()
	backends := loadBackendCPU(b, dbURL)
	b.ResetTimer()
	start := time.Now()
	err := cli.Run(context.Background(), in.args(append(args, archive)...), cli.IO{In: strings.NewReader(""), Out: &out, Err: &out})
	took := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("red import: %v\n%s", err, out.String())
	}
	if want := fmt.Sprintf("%d of %d bundles imported (%d resources)", patients+1, patients+1, 4*patients+3); !strings.Contains(out.String(), want) {
		b.Fatalf("red import did not say %q:\n%s", want, out.String())
	}
	cpu, pg, db := loadCPU()-cpu0, loadPostgresCPU()-pg0, backends()
	resPerSec := float64(4*patients) / took.Seconds()
	b.ReportMetric(float64(patients), "patients")
	b.ReportMetric(resPerSec, "import-res/s")
	b.ReportMetric(loadPeakRSSMB(), "peak-rss-MB")
	b.Logf("import: %d patients (%d resources) in %s: %.0f resources/s (goal: twice BenchmarkLoad's ingest-res/s); %s",
		patients, 4*patients, took.Round(time.Millisecond), resPerSec, strings.TrimSpace(out.String()))
	b.Logf("import: this process used %.1f CPU-s (%.2f of %d cores), PostgreSQL processes %.1f CPU-s (%.2f cores); per bundle %.2f ms here, %.2f ms in PostgreSQL (%.2f ms in the backends of this database); load average %s at the start, %s at the end",
		cpu.Seconds(), cpu.Seconds()/took.Seconds(), runtime.NumCPU(), pg.Seconds(), pg.Seconds()/took.Seconds(),
		loadMS(cpu)/float64(patients), loadMS(pg)/float64(patients), loadMS(db)/float64(patients), load0, loadAvg())
	b.ReportMetric(loadMS(db)/float64(patients), "import-pg-backend-ms/bundle")
}

// writeImportZip writes BenchmarkLoad's bundles as entries of a zip archive: the shared one
// first, then patient 0 to n-1.
func writeImportZip(t testing.TB, path string, data *loadgen.Data, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	add := func(name string, body []byte) {
		w, err := zw.Create(name)
		if err == nil {
			_, err = w.Write(body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	add("0-praxis.xml", data.SharedBundle())
	for i := range n {
		add(fmt.Sprintf("akten/%07d.xml", i), data.Bundle(i))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
