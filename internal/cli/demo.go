package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/storage"
)

// demoBundle is the demo tenant's fictional practice: doctors, patients with their insurance,
// encounters, diagnoses, findings and a letter, matching the TI simulators' cards and records.
//
//go:embed demo-bundle.xml
var demoBundle []byte

const demoTenant, demoUser = "demo", "demo"

func (e *env) demoCmd() *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "demo",
		Short: "serve the demo tenant, creating it with fictional patients on first use",
		Long: "demo creates the tenant \"demo\" (user \"demo\", a random password kept in the data directory) if it\n" +
			"does not exist, stores a fictional practice (three doctors, eight patients with their insurance,\n" +
			"encounters, diagnoses, findings and a letter), and serves it like red serve. It shows which\n" +
			"insured persons the TI simulators know, most of them patients of the demo practice.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			signed, err := e.prepareTI(o.ti)
			if err != nil {
				return err
			}
			defer signed.Close()
			st, err := e.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			pw, err := e.ensureDemo(ctx, st)
			if err != nil {
				return err
			}
			o.tenant, o.user, o.command = demoTenant, demoUser, "red demo"
			return e.serve(ctx, st, o, signed, pw, func(base string, sims *simulators) {
				epaKVNR := e.printInsured(sims)
				fmt.Fprintf(e.io.Out, "try:  curl -s '%s/%s/Patient?page=1'\n", base, demoTenant)
				if epaKVNR != "" {
					fmt.Fprintf(e.io.Out, "try:  curl -s '%s/%s/TI?action=$getepastatus&patient=%s'\n", base, demoTenant, epaKVNR)
				}
				if len(sims.egks) > 0 {
					fmt.Fprintf(e.io.Out, "try:  curl -s '%s/%s/TI?action=$egkfetch&bundle=raw'\n", base, demoTenant)
				}
				fmt.Fprintf(e.io.Out, "red: demo tenant unlocked; listening on %s/%s (Ctrl-C stops and wipes the keys)\n", base, demoTenant)
			})
		},
	}
	o.flags(c)
	return c
}

// ensureDemo returns the demo user's password, creating the tenant, its password file and its
// demo patients when the tenant does not exist yet.
func (e *env) ensureDemo(ctx context.Context, st storage.Store) ([]byte, error) {
	pwPath := filepath.Join(e.dataDir, "demo-password")
	_, err := st.Tenant(ctx, demoTenant)
	switch {
	case err == nil:
		pw, err := os.ReadFile(pwPath)
		if err != nil {
			return nil, fmt.Errorf("the demo tenant exists but its password file is unreadable (%w); use red serve --tenant demo --user demo", err)
		}
		return bytes.TrimSpace(pw), nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	pw := []byte(hex.EncodeToString(raw[:]))
	if err := os.MkdirAll(e.dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(pwPath, pw, 0o600); err != nil {
		return nil, err
	}
	// the demo practice's user tries everything, the pharmacy's actions too
	v, err := e.newTenant(ctx, st, demoTenant, demoUser, pw, access.Roles())
	if err != nil {
		return nil, err
	}
	defer v.Lock()
	b, err := fhir.Parse(demoBundle, fhir.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if _, err := (&records.Service{Tenant: demoTenant, Store: v.Barrier(st)}).PostBundle(ctx, b); err != nil {
		return nil, fmt.Errorf("store demo patients: %w", err)
	}
	fmt.Fprintf(e.io.Out, "red: created tenant %q, user %q, password %s (kept in %s) with a fictional practice\n", demoTenant, demoUser, pw, pwPath)
	return pw, nil
}

// printInsured shows the KVNRs the TI simulators know, with the demo patient of each, and
// returns one with an ePA this practice may use (a demo patient's when there is one).
func (e *env) printInsured(sims *simulators) (epaKVNR string) {
	known := sims.insured()
	if len(known) == 0 {
		return ""
	}
	patients := demoPatients()
	fmt.Fprintln(e.io.Out, "red: KVNRs the TI simulators know, for the TI actions:")
	for _, p := range known {
		name, ours := patients[p.kvnr]
		who := ""
		if ours {
			who = " — " + name
		}
		fmt.Fprintf(e.io.Out, "red:   %s  %s%s\n", p.kvnr, strings.Join(p.facts, "; "), who)
		if p.entitled && (epaKVNR == "" || ours && patients[epaKVNR] == "") {
			epaKVNR = p.kvnr
		}
	}
	return epaKVNR
}

// demoPatients maps the KVNRs of the demo bundle's patients to "Patient/id Given Family".
func demoPatients() map[string]string {
	b, err := fhir.Parse(demoBundle, fhir.DefaultLimits)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range b.FindElements("entry/resource/Patient") {
		for _, id := range p.SelectElements("identifier") {
			if ident.Canonical(fhir.ChildValue(id, "system")) == "http://fhir.de/sid/gkv/kvid-10" {
				out[fhir.ChildValue(id, "value")] = fmt.Sprintf("Patient/%s %s %s", fhir.ChildValue(p, "id"), fhir.ChildValue(p, "name", "given"), fhir.ChildValue(p, "name", "family"))
			}
		}
	}
	return out
}
