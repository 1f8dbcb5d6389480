package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/redclone/red/internal/ui"
)

// How red erp sign reaches a running red serve: red serve writes a client token into a file in
// its data directory that only its user may read (0600, the directory 0700), named by its port,
// and removes it when it stops; red erp sign reads it and presents the token. The page's CSRF
// token never leaves the page.

// clientToken is the content of the client token file.
type clientToken struct {
	Tenant string `json:"tenant"`
	Port   int    `json:"port"`
	Token  string `json:"token"`
}

// clientTokenFile is where red serve on port keeps its client token.
func (e *env) clientTokenFile(port int) string {
	return filepath.Join(e.dataDir, "serve-"+strconv.Itoa(port)+".token")
}

// writeClientToken writes the client token of the server on port and returns what removes it
// again. A token that cannot be written is said, not fatal: only red erp sign needs it.
func (e *env) writeClientToken(tenant string, port int, token string) (remove func()) {
	path := e.clientTokenFile(port)
	b, _ := json.Marshal(clientToken{Tenant: tenant, Port: port, Token: token})
	if err := writePrivate(e.dataDir, path, b); err != nil {
		fmt.Fprintf(e.io.Out, "red: red erp sign cannot reach this server: %v\n", err)
		return func() {}
	}
	return func() {
		// only while it is still this server's: another red may hold the port by now
		if now, err := os.ReadFile(path); err == nil && bytes.Equal(now, b) {
			_ = os.Remove(path)
		}
	}
}

// writePrivate writes b to path (in dir, created 0700) as a new file only its owner may read,
// replacing one that is there.
func writePrivate(dir, path string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".serve-*.token") // 0600
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// readClientToken reads the client token of the red serve on port for tenant.
func (e *env) readClientToken(tenant string, port int) (clientToken, error) {
	path := e.clientTokenFile(port)
	var t clientToken
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, fmt.Errorf("no red serve with this data directory listens on port %d (%s is missing): start \"%s serve --tenant %s --user NAME\", or give --port (and --data-dir) of the one that runs",
			port, path, e.command(), shellQuote(tenant))
	}
	if err != nil {
		return t, fmt.Errorf("read the client token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return t, fmt.Errorf("read the client token: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return t, fmt.Errorf("%s may be read or changed by others (mode %04o): it is not red's; remove it and restart red serve", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<10))
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Token == "" || t.Port != port {
		return t, fmt.Errorf("%s is not a client token of red serve on port %d", path, port)
	}
	if t.Tenant != tenant {
		return t, fmt.Errorf("red on port %d serves tenant %q, not %q", port, t.Tenant, tenant)
	}
	return t, nil
}

func (e *env) erpCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "erp",
		Short: "e-prescriptions through a running red serve",
	}
	c.AddCommand(e.erpSignCmd())
	return c
}

func (e *env) erpSignCmd() *cobra.Command {
	var tenant, card string
	var port int
	c := &cobra.Command{
		Use:   "sign --tenant ALIAS [--port P] [--card HANDLE]",
		Short: "sign the queued e-prescriptions with the HBA, through a running red serve, showing the progress",
		Long: "sign starts one batch over the prescriptions queued with $createerptask, as the page " +
			"/{tenant}/ui/ of red serve does: the HBA's signature PIN is entered at the card terminal, " +
			"then each prescription is created, signed and activated at the E-Rezept-Fachdienst. It " +
			"shows the progress and each prescription's outcome, and exits with 1 when any was not " +
			"activated (it stays queued for the next batch). It reaches the red serve of the same data " +
			"directory on --port by the client token that red serve keeps there for its user only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.erpSign(cmd.Context(), tenant, port, card)
		},
	}
	c.Flags().StringVar(&tenant, "tenant", "", "tenant alias (required): the one red serve unlocked")
	c.Flags().IntVar(&port, "port", DefaultPort, "port of red serve on 127.0.0.1")
	c.Flags().StringVar(&card, "card", "", "the HBA's card handle ($getcards); default: the only physician's HBA inserted")
	_ = c.MarkFlagRequired("tenant")
	return c
}

// signClient talks to the page's endpoints with the client token.
type signClient struct {
	base  string // http://127.0.0.1:port/tenant/ui/
	token string
	http  *http.Client
}

func (c *signClient) do(ctx context.Context, method, path string, body any, want int) (ui.State, error) {
	var s ui.State
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		return s, fmt.Errorf("red serve does not answer: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return s, fmt.Errorf("red serve's answer broke off: %w", err)
	}
	if resp.StatusCode != want {
		return s, fmt.Errorf("red serve refused (%d): %s", resp.StatusCode, refusal(b))
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("red serve's answer is unreadable: %w", err)
	}
	return s, nil
}

var diagnostics = regexp.MustCompile(`<diagnostics value="([^"]*)"`)

// refusal is the message of an error answer: the page's JSON, or the API's OperationOutcome.
func refusal(b []byte) string {
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &j) == nil && j.Error != "" {
		return j.Error
	}
	if m := diagnostics.FindSubmatch(b); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	return "no reason given"
}

// erpSign starts a batch at the red serve on port and follows it to its end.
func (e *env) erpSign(ctx context.Context, tenant string, port int, card string) error {
	tok, err := e.readClientToken(tenant, port)
	if err != nil {
		return err
	}
	c := &signClient{
		base:  "http://127.0.0.1:" + strconv.Itoa(port) + "/" + url.PathEscape(tenant) + "/ui/",
		token: tok.Token,
		http:  &http.Client{Timeout: 60 * time.Second},
	}
	s, err := c.do(ctx, http.MethodGet, "state", nil, http.StatusOK)
	if err != nil {
		return err
	}
	if s.Error != "" {
		return fmt.Errorf("red serve cannot list the prescriptions: %s", s.Error)
	}
	if len(s.Pending) == 0 {
		fmt.Fprintln(e.io.Out, "red: nothing to sign: no prescription is queued")
		return nil
	}
	s, err = c.do(ctx, http.MethodPost, "sign", map[string]string{"card": card}, http.StatusAccepted)
	if err != nil {
		return err
	}
	if s.Batch == nil {
		return errors.New("red serve started no batch")
	}
	id := s.Batch.ID
	fmt.Fprintf(e.io.Out, "red: signing %s with the HBA of %s\n", prescriptions(len(s.Batch.Items)), s.Batch.Card)
	view := e.progressView()
	b := *s.Batch
	for b.Running {
		view.update(b)
		select {
		case <-ctx.Done():
			view.stop()
			return errors.New("stopped following the batch; it goes on in red serve, whose page shows its outcome")
		case <-time.After(200 * time.Millisecond):
		}
		s, err := c.do(ctx, http.MethodGet, "state", nil, http.StatusOK)
		if err != nil {
			view.stop()
			return err
		}
		if s.Batch == nil || s.Batch.ID != id {
			view.stop()
			return errors.New("red serve no longer knows this batch (was it restarted?)")
		}
		b = *s.Batch
	}
	view.update(b)
	view.stop()
	return e.outcome(b)
}

// outcome prints each prescription's outcome — its id (the MedicationRequest's), never person
// data — and is an error when any was not activated.
func (e *env) outcome(b ui.Batch) error {
	activated := 0
	for _, r := range b.Items {
		if r.State == "activated" {
			activated++
			fmt.Fprintf(e.io.Out, "red:   %s  activated\n", r.ID)
		} else {
			fmt.Fprintf(e.io.Out, "red:   %s  %s: %s\n", r.ID, r.State, r.Reason)
		}
	}
	fmt.Fprintf(e.io.Out, "red: %d of %s activated\n", activated, prescriptions(len(b.Items)))
	switch {
	case b.Error != "":
		return fmt.Errorf("the batch stopped: %s", b.Error)
	case activated < len(b.Items):
		return fmt.Errorf("%d of %s not activated; they stay queued for the next batch", len(b.Items)-activated, prescriptions(len(b.Items)))
	}
	return nil
}

func prescriptions(n int) string {
	if n == 1 {
		return "1 prescription"
	}
	return strconv.Itoa(n) + " prescriptions"
}

// progressView shows a batch's progress: a bar on a terminal, else a line for each change.
type progressView interface {
	update(b ui.Batch)
	stop()
}

func (e *env) progressView() progressView {
	if f, ok := e.io.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barView{out: f}
	}
	return &lineView{out: e.io.Out, states: map[string]string{}}
}

// barView is a progress bar of the batch's steps, described by its phase.
type barView struct {
	out *os.File
	bar *progressbar.ProgressBar
}

func (v *barView) update(b ui.Batch) {
	if v.bar == nil {
		v.bar = progressbar.NewOptions(max(b.Total, 1),
			progressbar.OptionSetWriter(v.out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetDescription(b.Message))
	}
	v.bar.Describe(b.Message)
	done := b.Done
	if !b.Running {
		done = max(b.Total, 1)
	}
	_ = v.bar.Set(done)
}

func (v *barView) stop() {
	if v.bar != nil {
		fmt.Fprintln(v.out)
	}
}

// lineView writes a line when the batch's phase or a prescription's state changes, for logs
// and pipes.
type lineView struct {
	out     io.Writer
	message string
	states  map[string]string
}

func (v *lineView) update(b ui.Batch) {
	if b.Running && b.Message != v.message {
		v.message = b.Message
		fmt.Fprintf(v.out, "red: %s\n", b.Message)
	}
	for _, r := range b.Items {
		if old, seen := v.states[r.ID]; seen && old != r.State {
			fmt.Fprintf(v.out, "red:   %s  %s (%d/%d steps)\n", r.ID, r.State, b.Done, b.Total)
		}
		v.states[r.ID] = r.State
	}
}

func (v *lineView) stop() {}
