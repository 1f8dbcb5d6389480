// Package ui serves the page on which a practice signs its queued e-prescriptions, on the API's
// loopback server while the tenant is unlocked: GET /{tenant}/ui/ lists the prescriptions that
// practice software queued with $createerptask (patient, medication, date), its "sign all"
// button starts one batch in the background (POST /{tenant}/ui/sign), and the page follows the
// batch (GET /{tenant}/ui/state) — the physician enters the signature PIN at the card terminal
// meanwhile — until each prescription's outcome shows: activated, or where it stopped and why.
// red erp sign drives the same endpoints from the command line.
//
// Person data shows on this page only: never in a URL (choices travel in request bodies) nor in
// a log line. The page loads nothing from elsewhere and has no inline script or style: its HTML
// comes from an embedded html/template, which escapes every value, and its script, style sheet
// and icon are embedded files served beside it, so that its Content-Security-Policy allows
// nothing but its own origin (CSP). Every answer is no-store, nosniff and no-referrer, and may
// not be framed.
//
// Besides the guards of every API request (loopback Host with the server's port, no foreign
// Origin, Sec-Fetch-Site same-origin or none, the unlocked tenant), the JSON endpoint and the
// POST need a token, compared in constant time: the page's CSRF token, random for each server
// start and written only into the page (header X-CSRF-Token, or the form field csrf), or the
// client token of red erp sign (Authorization: Bearer), which red serve writes to a file that
// only its user may read. A POST a browser marks as anything but same-origin is refused too.
//
// Signing needs a logged-in physician (package access), as RED's role rules have it; the batch
// runs as the user who started it.
//
// One batch runs at a time (a second POST meanwhile is 409). It runs apart from the request
// that started it, bounded in time (Options.BatchTimeout) and cancelled by Close; its progress
// (erp.Service.Progress) is kept in memory until the next batch, for the page to poll.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/telematik"
)

// CSP is the page's Content-Security-Policy: its own script, style, icon and requests only.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// DefaultBatchTimeout bounds a batch: the card check, the PIN entry, and every prescription's
// way to the Fachdienst.
const DefaultBatchTimeout = 10 * time.Minute

// cardsTimeout bounds listing the HBAs for the page, so that a Konnektor that hangs does not
// hold the page: it then shows without the choice of card.
const cardsTimeout = 10 * time.Second

// maxBody bounds the body of a POST: a card handle and a token.
const maxBody = 4 << 10

// TI is what the page needs of the TI actions (*telematik.Service).
type TI interface {
	OpenPrescriptions(ctx context.Context) ([]erp.Prescription, error)
	PrescribingHBAs(ctx context.Context) ([]telematik.HBA, error)
	SignPrescriptions(ctx context.Context, handle string, ids []string, w telematik.Watch) ([]erp.Prescription, error)
}

// Options configure a Handler.
type Options struct {
	Tenant       string // the unlocked tenant's alias, for the page's title
	TI           TI
	Log          *slog.Logger
	BatchTimeout time.Duration // DefaultBatchTimeout when 0
}

// Handler serves the page, its assets and endpoints. Make it with New.
type Handler struct {
	opts        Options
	pageToken   string
	clientToken string

	life    context.Context // ends with Close: cancels a running batch
	stop    context.CancelFunc
	running sync.WaitGroup

	mu      sync.Mutex
	current *batch // the running or the last batch; nil before the first
	closed  bool
}

// New makes a Handler with fresh tokens.
func New(o Options) (*Handler, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	page, err := token()
	if err != nil {
		return nil, err
	}
	client, err := token()
	if err != nil {
		return nil, err
	}
	life, stop := context.WithCancel(context.Background())
	return &Handler{opts: o, pageToken: page, clientToken: client, life: life, stop: stop}, nil
}

// token is 256 random bits, URL-safe.
func token() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ClientToken is the token red erp sign presents (Authorization: Bearer): the caller keeps it
// where only the server's user can read it.
func (h *Handler) ClientToken() string { return h.clientToken }

// Close refuses new batches, cancels a running one and waits for it to stop, at most until ctx
// ends. Call it before the tenant's keys are wiped: a batch stores every step.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.stop()
	done := make(chan struct{})
	go func() {
		h.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

//go:embed assets
var assets embed.FS

var page = template.Must(template.New("page.html").ParseFS(assets, "assets/page.html"))

// assetTypes are the files served beside the page, with their media types.
var assetTypes = map[string]string{
	"app.js":   "text/javascript; charset=utf-8",
	"app.css":  "text/css; charset=utf-8",
	"icon.svg": "image/svg+xml",
}

// secure sets the headers of every answer.
func secure(w http.ResponseWriter, contentType string) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// Asset serves the page's script, style sheet and icon (GET /{tenant}/ui/app.js, app.css,
// icon.svg).
func (h *Handler) Asset(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	typ, ok := assetTypes[name]
	if !ok {
		h.fail(w, r, false, fhir.Fail(fhir.CodeNotFound, "", "no such file"))
		return
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		h.fail(w, r, false, err)
		return
	}
	secure(w, typ)
	_, _ = w.Write(b)
}

// Page serves the page (GET /{tenant}/ui/).
func (h *Handler) Page(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "")
}

// pageData is what the page's template shows.
type pageData struct {
	Tenant   string
	Token    string
	State    State
	HBAs     []telematik.HBA
	HBAError string // why the HBAs could not be listed
	Notice   string // why a form's POST was refused
}

// render writes the page with its current state; notice says why a form's POST was refused.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, notice string) {
	d := pageData{Tenant: h.opts.Tenant, Token: h.pageToken, State: h.state(r.Context()), Notice: notice}
	ctx, cancel := context.WithTimeout(r.Context(), cardsTimeout)
	hbas, err := h.opts.TI.PrescribingHBAs(ctx)
	cancel()
	if err != nil {
		d.HBAError, hbas = h.message(r, err), nil
	}
	d.HBAs = hbas
	var buf strings.Builder
	if err := page.Execute(&buf, d); err != nil {
		h.fail(w, r, false, err)
		return
	}
	secure(w, "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// State is what GET /{tenant}/ui/state answers (JSON): the open prescriptions and the running
// or last batch.
type State struct {
	Pending []Row  `json:"pending"`
	Error   string `json:"error,omitempty"` // why the open prescriptions could not be listed
	Batch   *Batch `json:"batch,omitempty"`
}

// Row is one prescription as the page shows it.
type Row struct {
	ID         string `json:"id"` // the MedicationRequest's id
	Patient    string `json:"patient"`
	Birthday   string `json:"birthday,omitempty"`
	Medication string `json:"medication"`
	Date       string `json:"date"` // when it was queued, YYYY-MM-DD HH:MM in Germany
	State      string `json:"state"`
	Reason     string `json:"reason,omitempty"` // why its last step failed
}

func rowOf(p erp.Prescription) Row {
	name := p.Patient.Family
	if p.Patient.Given != "" {
		if name != "" {
			name += ", "
		}
		name += p.Patient.Given
	}
	date := ""
	if !p.Queued.IsZero() {
		date = p.Queued.In(erp.Berlin).Format("2006-01-02 15:04")
	}
	return Row{ID: p.ID, Patient: name, Birthday: p.Patient.Birthday, Medication: p.Medication, Date: date, State: string(p.State), Reason: p.Reason}
}

// state is the open prescriptions and the batch as they are now.
func (h *Handler) state(ctx context.Context) State {
	s := State{Pending: []Row{}, Batch: h.snapshot()}
	ps, err := h.opts.TI.OpenPrescriptions(ctx)
	if err != nil {
		s.Error = h.logged(err, "listing the open prescriptions failed")
		return s
	}
	for _, p := range ps {
		s.Pending = append(s.Pending, rowOf(p))
	}
	return s
}

// State answers GET /{tenant}/ui/state with State as JSON.
func (h *Handler) State(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r, "") {
		h.fail(w, r, false, errToken)
		return
	}
	writeJSON(w, http.StatusOK, h.state(r.Context()))
}

var errToken = fhir.Fail(fhir.CodeForbidden, "", "this needs the page's token (reload the page) or red erp sign's")

// authorized tells whether r carries the page's token (header, or the form field formToken) or
// the client token.
func (h *Handler) authorized(r *http.Request, formToken string) bool {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return same(t, h.pageToken)
	}
	if formToken != "" {
		return same(formToken, h.pageToken)
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return same(t, h.clientToken)
	}
	return false
}

// same compares in constant time (the tokens' length is no secret).
func same(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// signRequest is the body of POST /{tenant}/ui/sign.
type signRequest struct {
	Card string `json:"card"` // the HBA's handle; "" for the only inserted one
}

// Sign answers POST /{tenant}/ui/sign: it starts a batch over the open prescriptions with the
// HBA named (or the only one inserted) and answers 202 with State as JSON — for a form's POST,
// 303 back to the page. A running batch is 409, so is nothing to sign; a missing or wrong
// token, and a request a browser marks as not same-origin, are 403.
func (h *Handler) Sign(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := mt == "application/x-www-form-urlencoded"
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		h.fail(w, r, form, fhir.Fail(fhir.CodeForbidden, "", "a browser may start a batch only from red's own page"))
		return
	}
	var req signRequest
	formToken := ""
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	switch {
	case form:
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, form, fhir.Wrap(err, fhir.CodeStructure, "the form could not be read"))
			return
		}
		formToken, req.Card = r.PostForm.Get("csrf"), r.PostForm.Get("card")
	case mt == "application/json":
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			h.fail(w, r, form, fhir.Wrap(err, fhir.CodeStructure, `send {"card": "HBA handle"} or {}`))
			return
		}
	case r.ContentLength == 0:
	default:
		h.fail(w, r, form, fhir.Fail(fhir.CodeUnsupportedMediaType, "", "send application/json or a form"))
		return
	}
	if !h.authorized(r, formToken) {
		h.fail(w, r, form, errToken)
		return
	}
	if err := access.Require(r.Context(), "signing e-prescriptions", access.Physician); err != nil {
		h.fail(w, r, form, err)
		return
	}
	if err := h.start(r.Context(), req.Card); err != nil {
		h.fail(w, r, form, err)
		return
	}
	if form {
		http.Redirect(w, r, "./", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusAccepted, h.state(r.Context()))
}

var errBusy = fhir.Fail(fhir.CodeConflict, "", "a batch is running already; wait for its outcome")

// busy is errBusy while a batch runs, an error while the handler is closed.
func (h *Handler) busy() error {
	switch {
	case h.closed:
		return fhir.Fail(fhir.CodeThrottled, "", "red is shutting down")
	case h.current != nil && h.current.running():
		return errBusy
	}
	return nil
}

// start checks what a batch needs — no batch running, open prescriptions, the HBA — and starts
// it in the background.
func (h *Handler) start(ctx context.Context, card string) error {
	h.mu.Lock()
	err := h.busy()
	h.mu.Unlock()
	if err != nil {
		return err
	}
	ps, err := h.opts.TI.OpenPrescriptions(ctx)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return fhir.Fail(fhir.CodeConflict, "", "there is nothing to sign: no prescription is queued")
	}
	hba, err := h.chooseHBA(ctx, card)
	if err != nil {
		return err
	}
	b := newBatch(hba, ps, time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.busy(); err != nil {
		return err
	}
	h.current = b
	h.running.Add(1)
	who, _ := access.From(ctx)
	go h.run(b, who, hba.Handle, b.ids())
	h.opts.Log.Info("e-prescription batch started", "batch", b.id, "prescriptions", len(ps))
	return nil
}

// chooseHBA is the inserted prescribing HBA with the handle card, or the only one when card is "".
func (h *Handler) chooseHBA(ctx context.Context, card string) (telematik.HBA, error) {
	hbas, err := h.opts.TI.PrescribingHBAs(ctx)
	if err != nil {
		return telematik.HBA{}, err
	}
	if card != "" {
		for _, c := range hbas {
			if c.Handle == card {
				return c, nil
			}
		}
		return telematik.HBA{}, fhir.Fail(fhir.CodeNotFound, "card", "no physician's or dentist's HBA with this handle is inserted")
	}
	switch len(hbas) {
	case 1:
		return hbas[0], nil
	case 0:
		return telematik.HBA{}, fhir.Fail(fhir.CodeConflict, "card", "no physician's or dentist's HBA is inserted: insert one to sign")
	}
	var names []string
	for _, c := range hbas {
		names = append(names, c.Handle+" ("+c.Holder+")")
	}
	return telematik.HBA{}, fhir.Fail(fhir.CodeRequired, "card", "several HBAs are inserted; choose one: %s", strings.Join(names, ", "))
}

// run carries out batch b as who, bounded in time and cancelled by Close.
func (h *Handler) run(b *batch, who access.Principal, handle string, ids []string) {
	defer h.running.Done()
	ctx, cancel := context.WithTimeout(access.With(h.life, who), h.opts.BatchTimeout)
	defer cancel()
	ps, err := h.opts.TI.SignPrescriptions(ctx, handle, ids, telematik.Watch{
		PIN:     func() { h.update(func() { b.phase(PhasePIN) }) },
		Signing: func() { h.update(func() { b.phase(PhaseSigning) }) },
		Step:    func(p erp.Prescription) { h.update(func() { b.step(p) }) },
	})
	why := ""
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = "the batch took longer than " + h.opts.BatchTimeout.String() + " and was stopped; what it did is kept, sign again to go on"
	case ctx.Err() != nil:
		why = "red was stopped during the batch; what it did is kept, sign again to go on"
	case err != nil:
		why = h.logged(err, "the e-prescription batch failed")
	}
	h.update(func() { b.finish(ps, why, time.Now()) })
	activated, open := b.counts()
	h.opts.Log.Info("e-prescription batch finished", "batch", b.id, "activated", activated, "not_activated", open, "ms", time.Since(b.started).Milliseconds())
}

func (h *Handler) update(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// snapshot is the current batch for the page, nil before the first.
func (h *Handler) snapshot() *Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.current == nil {
		return nil
	}
	s := h.current.snapshot()
	return &s
}

// fail answers err: as JSON {"error": …}, or for a form's POST as the page with the message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, form bool, err error) {
	_, status := fhir.Explain(err)
	msg := h.message(r, err)
	if form && status != http.StatusForbidden {
		h.render(w, r, status, msg)
		return
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

// message is what the user reads of err; an internal error is logged under a reference.
func (h *Handler) message(r *http.Request, err error) string {
	if r.Context().Err() != nil && fhir.CodeOf(err) == "" {
		return "the request was cancelled"
	}
	return h.logged(err, "request failed")
}

// logged is err's public message; an error without one is logged under a reference the message
// names. Public messages carry no person data.
func (h *Handler) logged(err error, what string) string {
	issues, status := fhir.Explain(err)
	if status < 500 || len(issues) > 0 {
		var msgs []string
		for _, i := range issues {
			msgs = append(msgs, i.Diagnostics)
		}
		return strings.Join(msgs, "; ")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ref := hex.EncodeToString(b[:])
	h.opts.Log.Error(what, "ref", ref, "err", err)
	return "internal error; the server log has the details under reference " + ref
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	secure(w, "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
