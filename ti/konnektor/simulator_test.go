package konnektor_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/konnektor"
	"github.com/redclone/red/ti/konnektor/konnektorsim"
	"github.com/redclone/red/ti/simpki"
)

// fakeClock is the simulator's injected time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a simulator behind a real HTTP server and a client talking to it.
type world struct {
	sim    *konnektorsim.Simulator
	pki    *simpki.PKI
	client *konnektor.Client
	clock  *fakeClock
}

type worldOptions struct {
	cfg      *konnektorsim.Config
	stateDir string
	pkiDir   string
	clock    *fakeClock
	userID   string
}

func start(t testing.TB, o worldOptions) *world {
	t.Helper()
	cfg := konnektorsim.DefaultConfig()
	if o.cfg != nil {
		cfg = *o.cfg
	}
	if o.clock == nil {
		o.clock = &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
	}
	cfg.Clock = o.clock.Now
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	if o.pkiDir == "" {
		o.pkiDir = t.TempDir()
	}
	p, err := simpki.Load(o.pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := konnektorsim.New(cfg, p, o.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &world{
		sim:   sim,
		pki:   p,
		clock: o.clock,
		client: &konnektor.Client{
			BaseURL: srv.URL,
			HTTP:    srv.Client(),
			Context: konnektor.Context{MandantID: "Mandant1", ClientSystemID: "CS1", WorkplaceID: "AP1", UserID: o.userID},
		},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (w *world) queue(t testing.TB, handle string, entries ...string) {
	t.Helper()
	if err := w.sim.QueuePinEntries(handle, entries...); err != nil {
		t.Fatal(err)
	}
}

func wantPinStatus(t testing.TB, c *konnektor.Client, handle string, pin konnektor.PinType, state konnektor.PinState, left int) {
	t.Helper()
	got, err := c.GetPinStatus(ctxT(t), handle, pin)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != state || got.LeftTries != left {
		t.Fatalf("PIN status %s/%d, want %s/%d", got.State, got.LeftTries, state, left)
	}
}

func wantPin(t testing.TB, got konnektor.PinResponse, err error, result konnektor.PinResult, left int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if got.Result != result || got.LeftTries != left {
		t.Fatalf("PIN result %s/%d, want %s/%d", got.Result, got.LeftTries, result, left)
	}
}

func wantFault(t testing.TB, err error, code int) {
	t.Helper()
	var f *konnektor.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v, want fault %d", err, code)
	}
	if f.Code() != code || f.HTTPStatus != http.StatusInternalServerError {
		t.Fatalf("fault %v (HTTP %d), want code %d", f, f.HTTPStatus, code)
	}
}

// TestPinLifeCycle runs the HBA's PIN.CH from transport PIN to unblocking with the PUK.
func TestPinLifeCycle(t *testing.T) {
	w := start(t, worldOptions{})
	c, ctx := w.client, ctxT(t)
	const hba, pin = "HBA-16", konnektor.PinCH

	wantPinStatus(t, c, hba, pin, konnektor.PinTransportPIN, 3)
	r, err := c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinTransportPin, 3)
	if r.Status.Result != konnektor.ResultWarning || r.Status.Error.Code() != konnektor.CodeTransportPin {
		t.Fatalf("status %+v, want warning 4065", r.Status)
	}

	w.queue(t, hba, "000000", "246801") // transport PIN, new PIN
	r, err = c.ChangePin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinOK, 3)
	wantPinStatus(t, c, hba, pin, konnektor.PinVerifiable, 3)

	w.queue(t, hba, "246801")
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinOK, 3)
	wantPinStatus(t, c, hba, pin, konnektor.PinVerified, 3)

	w.queue(t, hba, "111111", "222222", "333333")
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinRejected, 2)
	wantPinStatus(t, c, hba, pin, konnektor.PinVerifiable, 2)
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinRejected, 1)
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinNowBlocked, 0)
	wantPinStatus(t, c, hba, pin, konnektor.PinBlocked, 0)

	prompts := w.sim.PinPrompts(hba)
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinWasBlocked, 0)
	if w.sim.PinPrompts(hba) != prompts {
		t.Fatal("a blocked PIN was prompted for")
	}

	w.queue(t, hba, "87654321") // wrong PUK
	r, err = c.UnblockPin(ctx, hba, pin, false)
	wantPin(t, r, err, konnektor.PinRejected, 2)
	wantPinStatus(t, c, hba, pin, konnektor.PinBlocked, 0)

	w.queue(t, hba, "12345678", "135790") // PUK, new PIN
	r, err = c.UnblockPin(ctx, hba, pin, true)
	wantPin(t, r, err, konnektor.PinOK, 3)
	wantPinStatus(t, c, hba, pin, konnektor.PinVerifiable, 3)

	w.queue(t, hba, "135790")
	r, err = c.VerifyPin(ctx, hba, pin)
	wantPin(t, r, err, konnektor.PinOK, 3)
	wantPinStatus(t, c, hba, pin, konnektor.PinVerified, 3)
}

func TestPinEdges(t *testing.T) {
	t.Run("blocks the card for good after three wrong transport PINs", func(t *testing.T) {
		w := start(t, worldOptions{})
		c, ctx := w.client, ctxT(t)
		w.queue(t, "HBA-16", "111111", "222222", "333333") // wrong transport PINs
		for _, want := range []konnektor.PinResult{konnektor.PinRejected, konnektor.PinRejected, konnektor.PinNowBlocked} {
			r, err := c.ChangePin(ctx, "HBA-16", konnektor.PinCH)
			if err != nil || r.Result != want {
				t.Fatalf("ChangePin: %+v, %v; want %s", r, err, want)
			}
		}
		_, err := c.UnblockPin(ctx, "HBA-16", konnektor.PinCH, true)
		wantFault(t, err, konnektor.CodePinBlocked)
		wantPinStatus(t, c, "HBA-16", konnektor.PinCH, konnektor.PinBlocked, 0)
	})
	t.Run("makes the PUK unusable after three wrong entries", func(t *testing.T) {
		w := start(t, worldOptions{})
		c, ctx := w.client, ctxT(t)
		w.queue(t, "SMC-B-15", "111111", "111111", "111111", "00000000", "00000000", "00000000")
		for i := 0; i < 3; i++ {
			if _, err := c.VerifyPin(ctx, "SMC-B-15", konnektor.PinSMC); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []konnektor.PinResult{konnektor.PinRejected, konnektor.PinRejected, konnektor.PinNowBlocked, konnektor.PinWasBlocked} {
			r, err := c.UnblockPin(ctx, "SMC-B-15", konnektor.PinSMC, false)
			if err != nil || r.Result != want {
				t.Fatalf("UnblockPin: %+v, %v; want %s", r, err, want)
			}
		}
	})
	t.Run("allows ten unblocks per card", func(t *testing.T) {
		w := start(t, worldOptions{})
		c, ctx := w.client, ctxT(t)
		for i := 0; i < 10; i++ {
			r, err := c.UnblockPin(ctx, "EGK-18", konnektor.PinCH, false)
			wantPin(t, r, err, konnektor.PinOK, 3)
		}
		r, err := c.UnblockPin(ctx, "EGK-18", konnektor.PinCH, false)
		wantPin(t, r, err, konnektor.PinWasBlocked, 0)
	})
	t.Run("refuses a new PIN of the wrong length", func(t *testing.T) {
		w := start(t, worldOptions{})
		w.queue(t, "EGK-18", "123456", "123")
		r, err := w.client.ChangePin(ctxT(t), "EGK-18", konnektor.PinCH)
		wantPin(t, r, err, konnektor.PinError, 3)
	})
	t.Run("reports a PIN entry timeout as warning 4043", func(t *testing.T) {
		w := start(t, worldOptions{})
		w.queue(t, "EGK-18", "TIMEOUT")
		r, err := w.client.VerifyPin(ctxT(t), "EGK-18", konnektor.PinCH)
		wantPin(t, r, err, konnektor.PinError, 3)
		if r.Status.Error.Code() != konnektor.CodePinTimeout {
			t.Errorf("status %+v", r.Status)
		}
	})
	t.Run("answers a cancelled PIN entry with fault 4049", func(t *testing.T) {
		w := start(t, worldOptions{})
		w.queue(t, "EGK-18", "CANCEL")
		_, err := w.client.VerifyPin(ctxT(t), "EGK-18", konnektor.PinCH)
		wantFault(t, err, konnektor.CodeUserCancelled)
	})
}

// TestBatchSignature signs three prescriptions with one PIN.QES entry; every signature is a
// CMS that verifies against the simulator PKI.
func TestBatchSignature(t *testing.T) {
	w := start(t, worldOptions{})
	c, ctx := w.client, ctxT(t)
	docs := []konnektor.Document{
		{ShortText: "E-Rezept 1", Content: []byte(`<Bundle xmlns="http://hl7.org/fhir"><id value="1"/></Bundle>`)},
		{ShortText: "E-Rezept 2", Content: []byte(`<Bundle xmlns="http://hl7.org/fhir"><id value="2"/></Bundle>`)},
		{ShortText: "E-Rezept 3", Content: []byte(`<Bundle xmlns="http://hl7.org/fhir"><id value="3"/></Bundle>`), Detached: true},
	}
	before := w.sim.PinPrompts("HBA-16")
	sigs, err := c.SignDocuments(ctx, "HBA-16", docs)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.sim.PinPrompts("HBA-16") - before; got != 1 {
		t.Errorf("%d PIN prompts for a batch of 3, want 1", got)
	}
	certs, err := c.ReadCardCertificate(ctx, "HBA-16", konnektor.CertQES)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != len(docs) {
		t.Fatalf("%d signatures", len(sigs))
	}
	for i, s := range sigs {
		var detached []byte
		if docs[i].Detached {
			detached = docs[i].Content
		}
		content, signer, err := cms.Verify(s.Value, detached, w.pki.Pool(), w.clock.Now())
		if err != nil {
			t.Fatalf("signature %d: %v", i+1, err)
		}
		if !bytes.Equal(content, docs[i].Content) || !signer.Equal(certs[0].Certificate) {
			t.Errorf("signature %d: content %q, signer %s", i+1, content, signer.Subject)
		}
		info, err := cms.Inspect(s.Value)
		if err != nil || !info.SigningTime.Equal(w.clock.Now()) {
			t.Errorf("signature %d: signing time %v, %v", i+1, info.SigningTime, err)
		}
		v, err := c.VerifyDocument(ctx, s.Value, detached)
		if err != nil || v.HighLevelResult != konnektor.Valid || !v.SigningTime.Equal(w.clock.Now()) {
			t.Errorf("VerifyDocument %d: %+v, %v", i+1, v, err)
		}
	}
	if tel := admission.TelematikID(certs[0].Certificate); tel != "1-HBA-Testkarte-883110000177001" {
		t.Errorf("Telematik-ID %q", tel)
	}

	t.Run("reports a tampered signature INVALID", func(t *testing.T) {
		bad := bytes.Replace(sigs[0].Value, []byte(`value="1"`), []byte(`value="9"`), 1)
		v, err := c.VerifyDocument(ctx, bad, nil)
		if err != nil || v.HighLevelResult != konnektor.Invalid {
			t.Errorf("%+v, %v", v, err)
		}
	})
	t.Run("uses a PIN.QES verified just before without asking again", func(t *testing.T) {
		r, err := c.VerifyPin(ctx, "HBA-16", konnektor.PinQES)
		wantPin(t, r, err, konnektor.PinOK, 3)
		before := w.sim.PinPrompts("HBA-16")
		if _, err := c.SignDocuments(ctx, "HBA-16", docs[:1]); err != nil {
			t.Fatal(err)
		}
		if w.sim.PinPrompts("HBA-16") != before {
			t.Error("asked for the PIN again")
		}
		wantPinStatus(t, c, "HBA-16", konnektor.PinQES, konnektor.PinVerifiable, 3)
	})
	t.Run("refuses the batch on a wrong PIN.QES and counts the try", func(t *testing.T) {
		w.queue(t, "HBA-16", "999999")
		_, err := c.SignDocuments(ctx, "HBA-16", docs)
		wantFault(t, err, konnektor.CodeAccessDenied)
		wantPinStatus(t, c, "HBA-16", konnektor.PinQES, konnektor.PinVerifiable, 2)
	})
	t.Run("signs with the SMC-B's organisational key", func(t *testing.T) {
		sigs, err := c.SignDocuments(ctx, "SMC-B-17", docs[:1])
		if err != nil {
			t.Fatal(err)
		}
		_, signer, err := cms.Verify(sigs[0].Value, nil, w.pki.Pool(), w.clock.Now())
		if err != nil || signer.KeyUsage&0x2 == 0 { // content commitment
			t.Errorf("signer %v, %v", signer, err)
		}
	})
}

// TestKomfortsignatur checks the count and time bounds with an injected clock.
func TestKomfortsignatur(t *testing.T) {
	cfg := konnektorsim.DefaultConfig()
	cfg.ComfortSignature = konnektorsim.ComfortConfig{Max: 5, Timer: "1h"}
	clock := &fakeClock{now: time.Date(2025, 1, 15, 8, 0, 0, 0, time.UTC)}
	w := start(t, worldOptions{cfg: &cfg, clock: clock, userID: "user1"})
	c, ctx := w.client, ctxT(t)
	const hba = "HBA-16"
	doc := func(n int) []konnektor.Document {
		out := make([]konnektor.Document, n)
		for i := range out {
			out[i] = konnektor.Document{Content: []byte(fmt.Sprintf("doc %d", i))}
		}
		return out
	}
	mode := func(t *testing.T) konnektor.SignatureMode {
		t.Helper()
		m, err := c.GetSignatureMode(ctx, hba)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sign := func(t *testing.T, n, wantPrompts int) {
		t.Helper()
		before := w.sim.PinPrompts(hba)
		if _, err := c.SignDocuments(ctx, hba, doc(n)); err != nil {
			t.Fatal(err)
		}
		if got := w.sim.PinPrompts(hba) - before; got != wantPrompts {
			t.Fatalf("%d PIN prompts, want %d", got, wantPrompts)
		}
	}

	m := mode(t)
	if m.ComfortSignatureStatus != konnektor.ComfortEnabled || m.ComfortSignatureMax != 5 || m.ComfortSignatureTimer != time.Hour || m.Session == nil || m.Session.Mode != konnektor.ModePIN {
		t.Fatalf("mode %+v", m)
	}
	got, err := c.ActivateComfortSignature(ctx, hba)
	if err != nil || got != konnektor.ModeComfort {
		t.Fatalf("activate: %q, %v", got, err)
	}
	sign(t, 3, 0)
	if m := mode(t); m.Session.Mode != konnektor.ModeComfort || m.Session.CountRemaining != 2 || m.Session.TimeRemaining != time.Hour {
		t.Fatalf("session %+v", m.Session)
	}
	t.Run("refuses a batch larger than what is left", func(t *testing.T) {
		_, err := c.SignDocuments(ctx, hba, doc(3))
		wantFault(t, err, konnektor.CodeComfortCount)
	})
	sign(t, 2, 0)
	if m := mode(t); m.Session.Mode != konnektor.ModePIN || m.Session.CountRemaining != 0 {
		t.Fatalf("after 5 signatures: %+v", m.Session)
	}
	t.Run("ends the session when the count is used up", func(t *testing.T) {
		_, err := c.SignDocuments(ctx, hba, doc(1))
		wantFault(t, err, konnektor.CodeComfortCount)
		sign(t, 1, 1) // back to PIN entry
	})
	t.Run("ends the session when the time is up", func(t *testing.T) {
		if _, err := c.ActivateComfortSignature(ctx, hba); err != nil {
			t.Fatal(err)
		}
		sign(t, 1, 0)
		clock.Advance(59 * time.Minute)
		if m := mode(t); m.Session.Mode != konnektor.ModeComfort || m.Session.TimeRemaining != time.Minute {
			t.Fatalf("session %+v", m.Session)
		}
		sign(t, 1, 0)
		clock.Advance(time.Minute)
		if m := mode(t); m.Session.Mode != konnektor.ModePIN {
			t.Fatalf("session %+v", m.Session)
		}
		_, err := c.SignDocuments(ctx, hba, doc(1))
		wantFault(t, err, konnektor.CodeComfortTimer)
		sign(t, 1, 1)
	})
	t.Run("keeps sessions apart by UserId", func(t *testing.T) {
		if _, err := c.ActivateComfortSignature(ctx, hba); err != nil {
			t.Fatal(err)
		}
		ctx2 := w.client.Context
		ctx2.UserID = "user2"
		other := w.client.For(ctx2)
		before := w.sim.PinPrompts(hba)
		if _, err := other.SignDocuments(ctx, hba, doc(1)); err != nil {
			t.Fatal(err)
		}
		if w.sim.PinPrompts(hba) != before+1 {
			t.Error("user2 signed in comfort mode of user1")
		}
	})
	t.Run("deactivates", func(t *testing.T) {
		if err := c.DeactivateComfortSignature(ctx, hba); err != nil {
			t.Fatal(err)
		}
		if m := mode(t); m.Session.Mode != konnektor.ModePIN {
			t.Fatalf("session %+v", m.Session)
		}
	})
	t.Run("needs a UserId", func(t *testing.T) {
		ctx0 := w.client.Context
		ctx0.UserID = ""
		anon := w.client.For(ctx0)
		if _, err := anon.ActivateComfortSignature(ctx, hba); err == nil {
			t.Error("no error")
		}
	})
}

func TestFaults(t *testing.T) {
	cfg := konnektorsim.DefaultConfig()
	cfg.ComfortSignature.Disabled = true
	locked := cfg.Cards[1].PINs[konnektor.PinSMC]
	locked.Verified = false
	cfg.Cards[1].PINs = map[konnektor.PinType]konnektorsim.PinConfig{konnektor.PinSMC: locked}
	w := start(t, worldOptions{cfg: &cfg, userID: "user1"})
	c, ctx := w.client, ctxT(t)
	blocked := func(t *testing.T) {
		w.queue(t, "HBA-16", "111111", "111111", "111111")
		for i := 0; i < 3; i++ {
			if _, err := c.VerifyPin(ctx, "HBA-16", konnektor.PinQES); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(*testing.T)
		call  func() error
		code  int
	}{
		{name: "unknown card handle", code: konnektor.CodeInvalidHandle, call: func() error {
			_, err := c.GetPinStatus(ctx, "HBA-99", konnektor.PinQES)
			return err
		}},
		{name: "PIN type the card does not have", code: konnektor.CodeInvalidPinRef, call: func() error {
			_, err := c.VerifyPin(ctx, "HBA-16", konnektor.PinSMC)
			return err
		}},
		{name: "signature with an eGK", code: konnektor.CodeNoSignatureCard, call: func() error {
			_, err := c.SignDocuments(ctx, "EGK-18", []konnektor.Document{{Content: []byte("x")}})
			return err
		}},
		{name: "VSD of a card that is no eGK", code: konnektor.CodeWrongCardType, call: func() error {
			_, err := c.ReadVSD(ctx, "SMC-B-17", "SMC-B-17", true, true)
			return err
		}},
		{name: "authentication with an eGK", code: konnektor.CodeWrongCardType, call: func() error {
			_, err := c.ExternalAuthenticate(ctx, "EGK-18", make([]byte, 32))
			return err
		}},
		{name: "SMC-B not unlocked", code: konnektor.CodeAccessDenied, call: func() error {
			_, err := c.ExternalAuthenticate(ctx, "SMC-B-15", make([]byte, 32))
			return err
		}},
		{name: "certificate the card does not hold", code: konnektor.CodeNoCertificate, call: func() error {
			_, err := c.ReadCardCertificate(ctx, "SMC-B-17", konnektor.CertQES)
			return err
		}},
		{name: "Komfortsignatur switched off", code: konnektor.CodeComfortDisabled, call: func() error {
			_, err := c.ActivateComfortSignature(ctx, "HBA-16")
			return err
		}},
		{name: "Komfortsignatur with an SMC-B", code: konnektor.CodeNoSignatureCard, call: func() error {
			_, err := c.GetSignatureMode(ctx, "SMC-B-17")
			return err
		}},
		{name: "PIN.QES blocked", setup: blocked, code: konnektor.CodePinBlocked, call: func() error {
			_, err := c.SignDocuments(ctx, "HBA-16", []konnektor.Document{{Content: []byte("x")}})
			return err
		}},
	} {
		t.Run("answers "+tc.name+" with fault "+fmt.Sprint(tc.code), func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			wantFault(t, tc.call(), tc.code)
		})
	}
}

func TestCardsAndData(t *testing.T) {
	w := start(t, worldOptions{})
	c, ctx := w.client, ctxT(t)
	t.Run("lists the cards, filtered", func(t *testing.T) {
		all, err := c.GetCards(ctx, konnektor.Filter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("%d cards, %v", len(all), err)
		}
		for _, tc := range []struct {
			filter konnektor.Filter
			want   []string
		}{
			{konnektor.Filter{CardType: konnektor.CardSMCB}, []string{"SMC-B-15", "SMC-B-17"}},
			{konnektor.Filter{CtID: "Terminal1", CardType: konnektor.CardEGK}, []string{"EGK-18"}},
			{konnektor.Filter{CtID: "Terminal3", SlotID: 2}, []string{"SMC-B-17"}},
			{konnektor.Filter{CtID: "Terminal9"}, nil},
		} {
			got, err := c.GetCards(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var handles []string
			for _, card := range got {
				handles = append(handles, card.Handle)
			}
			if fmt.Sprint(handles) != fmt.Sprint(tc.want) {
				t.Errorf("filter %+v: %v, want %v", tc.filter, handles, tc.want)
			}
		}
		egk, _ := c.GetCards(ctx, konnektor.Filter{CardType: konnektor.CardEGK})
		if egk[0].KVNR != "M123456785" || egk[0].ICCSN != "80276883110000177004" || egk[0].CertificateExpiration.IsZero() {
			t.Errorf("eGK %+v", egk[0])
		}
	})
	t.Run("lists the terminals", func(t *testing.T) {
		ts, err := c.GetCardTerminals(ctx, false)
		if err != nil || len(ts) != 3 {
			t.Fatalf("%+v, %v", ts, err)
		}
		if ts[0].CtID != "Terminal1" || ts[0].IPv4Address != "192.168.178.41" || ts[0].Slots != 4 || !ts[0].Connected || len(ts[0].WorkplaceIDs) != 2 {
			t.Errorf("terminal %+v", ts[0])
		}
	})
	t.Run("authenticates with the SMC-B's AUT key", func(t *testing.T) {
		hash := sha256.Sum256([]byte("IDP challenge"))
		sig, err := c.ExternalAuthenticate(ctx, "SMC-B-15", hash[:])
		if err != nil {
			t.Fatal(err)
		}
		certs, err := c.ReadCardCertificate(ctx, "SMC-B-15", konnektor.CertAUT)
		if err != nil {
			t.Fatal(err)
		}
		pub := certs[0].Certificate.PublicKey.(*ecdsa.PublicKey)
		if !ecdsa.VerifyASN1(pub, hash[:], sig.Value) {
			t.Error("signature does not verify with C.AUT")
		}
		if tel := admission.TelematikID(certs[0].Certificate); tel != "1-SMC-B-Testkarte-883110000177002" {
			t.Errorf("Telematik-ID %q", tel)
		}
		v, err := c.VerifyCertificate(ctx, certs[0].DER)
		if err != nil || v.Result != konnektor.Valid || len(v.Roles) != 1 || v.Roles[0] != simpki.ProfessionBetriebsstaetteArzt {
			t.Errorf("VerifyCertificate %+v, %v", v, err)
		}
	})
	t.Run("reads the VSD of the eGK", func(t *testing.T) {
		v, err := c.ReadVSD(ctx, "EGK-18", "SMC-B-15", true, true)
		if err != nil {
			t.Fatal(err)
		}
		if v.Personal.KVNR != "M123456785" || v.Personal.City != "Köln" || v.Insurance.PayerIK != "109999994" || v.Protected == nil {
			t.Errorf("VSD %+v", v)
		}
		pn := v.Pruefungsnachweis
		if pn == nil || pn.Result != 2 || pn.CheckDigit == "" || !pn.Timestamp.Equal(w.clock.Now()) {
			t.Errorf("Prüfungsnachweis %+v", pn)
		}
		if _, err := v.HCV(); err != nil {
			t.Error(err)
		}
		offline, err := c.ReadVSD(ctx, "EGK-18", "SMC-B-15", false, false)
		if err != nil || offline.Pruefungsnachweis != nil {
			t.Errorf("without online check: %+v, %v", offline.Pruefungsnachweis, err)
		}
	})
}

// TestStateSurvivesRestart re-creates the simulator on the same directories.
func TestStateSurvivesRestart(t *testing.T) {
	stateDir, pkiDir := t.TempDir(), t.TempDir()
	clock := &fakeClock{now: time.Date(2025, 1, 15, 8, 0, 0, 0, time.UTC)}
	first := start(t, worldOptions{stateDir: stateDir, pkiDir: pkiDir, clock: clock, userID: "user1"})
	c, ctx := first.client, ctxT(t)
	first.queue(t, "HBA-16", "000000", "246801")
	if r, err := c.ChangePin(ctx, "HBA-16", konnektor.PinCH); err != nil || r.Result != konnektor.PinOK {
		t.Fatalf("ChangePin %+v, %v", r, err)
	}
	if _, err := c.ActivateComfortSignature(ctx, "HBA-16"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignDocuments(ctx, "HBA-16", []konnektor.Document{{Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	first.queue(t, "HBA-16", "111111")
	if r, err := c.VerifyPin(ctx, "HBA-16", konnektor.PinQES); err != nil || r.Result != konnektor.PinRejected {
		t.Fatalf("VerifyPin %+v, %v", r, err)
	}
	certBefore, err := c.ReadCardCertificate(ctx, "HBA-16", konnektor.CertQES)
	if err != nil {
		t.Fatal(err)
	}

	second := start(t, worldOptions{stateDir: stateDir, pkiDir: pkiDir, clock: clock, userID: "user1"})
	c = second.client
	wantPinStatus(t, c, "HBA-16", konnektor.PinCH, konnektor.PinVerifiable, 3)
	wantPinStatus(t, c, "HBA-16", konnektor.PinQES, konnektor.PinVerifiable, 2)
	second.queue(t, "HBA-16", "246801")
	r, err := c.VerifyPin(ctx, "HBA-16", konnektor.PinCH)
	wantPin(t, r, err, konnektor.PinOK, 3)
	m, err := c.GetSignatureMode(ctx, "HBA-16")
	if err != nil || m.Session == nil || m.Session.Mode != konnektor.ModeComfort || m.Session.CountRemaining != 249 {
		t.Fatalf("Komfortsignatur after restart: %+v, %v", m.Session, err)
	}
	certAfter, err := c.ReadCardCertificate(ctx, "HBA-16", konnektor.CertQES)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certBefore[0].DER, certAfter[0].DER) {
		t.Error("the card got a new certificate")
	}
}

// TestClientNeverHangs: a Konnektor that does not answer costs the caller its deadline.
func TestClientNeverHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := &konnektor.Client{BaseURL: srv.URL, HTTP: srv.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetCards(ctx, konnektor.Filter{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want deadline exceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}
