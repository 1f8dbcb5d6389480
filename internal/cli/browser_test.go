package cli_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/redclone/red/internal/ui"
)

// chromium is the path of a Chromium to drive. Without one the browser test is skipped, except
// in CI (CI=true), where .ci/run installs it and the test must run.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI must run the browser test: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed: the browser test of the signing page is skipped (apt-get install chromium to run it; CI does)")
	return ""
}

// browser starts a headless Chromium with a fresh profile that reaches nothing but loopback, and
// returns its context and the console messages it collects.
func browser(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		// no name resolves: the page is on 127.0.0.1, and nothing else is reached
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	var mu sync.Mutex
	var messages []string
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			messages = append(messages, m.String())
			mu.Unlock()
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), messages...)
	}
}

// pendingRow is a row of the page's tables as the browser shows it.
type pendingRow struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Patient    string `json:"patient"`
	Medication string `json:"medication"`
	Date       string `json:"date"`
	Status     string `json:"status"`
}

const rowsJS = `[...document.querySelectorAll('%s tbody tr')].map(tr => ({
	id: tr.dataset.id, state: tr.dataset.state,
	patient: tr.querySelector('.patient').innerText, medication: tr.querySelector('.medication').innerText,
	date: tr.querySelector('.date').innerText, status: tr.querySelector('.status').innerText}))`

// The signing page in a real browser: two queued prescriptions show with patient, medication
// and date; "Sign all" runs the batch (the simulated holder types the PIN at the terminal) and
// the page shows both activated; the Fachdienst then holds both Tasks. Besides: the page's
// headers, and the refusal of a POST without the CSRF token or from another site.
func TestSigningPageInBrowser(t *testing.T) {
	path := chromium(t)
	srv, _ := tiServer(t)
	queuePrescriptions(t, srv, "mr-a", "mr-b")

	t.Run("the page's headers", func(t *testing.T) {
		resp := getPage(t, srv)
		for k, want := range map[string]string{
			"Content-Security-Policy": ui.CSP,
			"Content-Type":            "text/html; charset=utf-8",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-store",
		} {
			if got := resp.header.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		if ui.CSP != "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'" {
			t.Errorf("CSP %q", ui.CSP)
		}
	})
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(getPage(t, srv).body)
	if token == nil {
		t.Fatal("no CSRF token in the page")
	}
	t.Run("a POST without the CSRF token is refused", func(t *testing.T) {
		status, body := srv.do(t, "POST", "/praxis/ui/sign", "application/json", []byte(`{}`), "Origin", srv.base, "Sec-Fetch-Site", "same-origin")
		if status != 403 || !strings.Contains(body, "token") {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("a POST from another origin is refused, token or not", func(t *testing.T) {
		for _, h := range [][]string{
			{"Origin", "http://evil.example", "X-CSRF-Token", token[1]},
			{"Origin", "http://localhost:8080", "Sec-Fetch-Site", "same-site", "X-CSRF-Token", token[1]},
			{"Sec-Fetch-Site", "cross-site", "X-CSRF-Token", token[1]},
		} {
			if status, body := srv.do(t, "POST", "/praxis/ui/sign", "application/json", []byte(`{}`), h...); status != 403 {
				t.Errorf("%v: %d %s", h, status, body)
			}
		}
		if _, body := srv.do(t, "GET", "/praxis/ui/state", "", nil, "X-CSRF-Token", token[1]); strings.Contains(body, `"batch"`) {
			t.Errorf("a refused POST started a batch: %s", body)
		}
	})

	start := time.Now()
	ctx, console := browser(t, path)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.base+"/praxis/ui/")); err != nil {
		t.Fatal(err)
	}
	pending, err := chromedp.Run(ctx, chromedp.Evaluate[[]pendingRow](strings.Replace(rowsJS, "%s", "#pending", 1)))
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(berlin(t)).Format("2006-01-02")
	t.Run("shows the pending prescriptions", func(t *testing.T) {
		if len(pending) != 2 {
			t.Fatalf("%d rows: %+v", len(pending), pending)
		}
		for i, id := range []string{"mr-a", "mr-b"} {
			r := pending[i]
			if r.ID != id || r.State != "pending" || !strings.HasPrefix(r.Patient, "Königsstein, Ludger") || r.Medication != "Sumatriptan-1a Pharma 100 mg Tabletten" ||
				!regexp.MustCompile(`^`+today+` \d\d:\d\d$`).MatchString(r.Date) {
				t.Errorf("row %d: %+v", i, r)
			}
		}
	})

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("sign-all"))); err != nil {
		t.Fatal(err)
	}
	done := `document.body.dataset.batch === 'done' && document.querySelectorAll('#outcome tbody tr[data-state="activated"]').length === 2`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](done, chromedp.WithPollingTimeout(8*time.Second))); err != nil {
		phase, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('phase').innerText + ' / ' + document.getElementById('notice').innerText`))
		t.Fatalf("no outcome: %v (page says %q)\nconsole: %v", err, phase, console())
	}
	outcome, err := chromedp.Run(ctx, chromedp.Evaluate[[]pendingRow](strings.Replace(rowsJS, "%s", "#outcome", 1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("shows each prescription activated", func(t *testing.T) {
		if len(outcome) != 2 {
			t.Fatalf("%+v", outcome)
		}
		for _, r := range outcome {
			if r.Status != "activated" || !strings.HasPrefix(r.Patient, "Königsstein") {
				t.Errorf("%+v", r)
			}
		}
		left, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('pending').hidden && !document.getElementById('pending-empty').hidden && document.getElementById('sign-all').disabled`))
		if err != nil || !left {
			t.Errorf("the pending list is not empty: %v", err)
		}
	})
	t.Run("the Fachdienst has both Tasks", func(t *testing.T) {
		status, body := srv.do(t, "GET", "/praxis/Task", "", nil)
		if status != 200 {
			t.Fatalf("%d\n%s", status, body)
		}
		mustContain(t, "Task polling", body, `<total value="2"/>`, "MedicationRequest/mr-a", "MedicationRequest/mr-b", `<status value="ready"/>`)
	})
	t.Run("the browser met no CSP violation or script error", func(t *testing.T) {
		for _, m := range console() {
			if strings.Contains(m, "Content Security Policy") || strings.Contains(strings.ToLower(m), "error") {
				t.Errorf("console: %s", m)
			}
		}
	})
	t.Logf("browser part: %s", time.Since(start).Round(time.Millisecond))
}

type pageAnswer struct {
	header http.Header
	body   string
}

// getPage loads the page without a browser.
func getPage(t *testing.T, srv *server) pageAnswer {
	t.Helper()
	resp, err := http.Get(srv.base + "/praxis/ui/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	return pageAnswer{resp.Header, string(body)}
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
