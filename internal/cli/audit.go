package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
)

func (e *env) auditCmd() *cobra.Command {
	var login loginOptions // the admin's: --admin, since --user selects the events of a user
	var patient, user, since, format string
	c := &cobra.Command{
		Use:   "audit --tenant ALIAS --admin NAME (--patient ID | --user NAME) [--since TIME] [--format table|json]",
		Short: "who saw or changed a patient's data, when and from which workstation (the audit trail; needs an admin)",
		Long: "audit answers a patient's right of access from the tenant's audit trail: every read, search, write,\n" +
			"deletion and TI action that concerned the patient (by id, or by the patient's KVNR), with the user,\n" +
			"workstation, API client, time and outcome. It needs the login of an admin of the tenant, and is\n" +
			"recorded in the trail itself. \"red audit verify\" checks the whole trail.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if patient == "" && user == "" {
				return errors.New("name the patient (--patient ID), or the user whose doings to show (--user NAME); red audit verify checks the whole trail")
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format is table or json, not %q", format)
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			return e.withTrail(cmd.Context(), login, func(ctx context.Context, t *audit.Trail) error {
				found, err := t.Query(ctx, audit.Filter{Patient: patient, User: user, Since: from})
				if err != nil {
					return err
				}
				if format == "json" {
					return e.printJSON(found)
				}
				e.printEvents(patient, user, found)
				return nil
			})
		},
	}
	pf := c.PersistentFlags()
	pf.StringVar(&login.tenant, "tenant", "", "tenant alias (required)")
	pf.StringVar(&login.user, "admin", "", "an admin of the tenant, who logs in (required)")
	pf.StringVar(&login.pwFile, "password-file", "", "read the admin's password from this file (else RED_PASSWORD, else a prompt)")
	_ = c.MarkPersistentFlagRequired("tenant")
	_ = c.MarkPersistentFlagRequired("admin")
	f := c.Flags()
	f.StringVar(&patient, "patient", "", "the Patient's id: what concerned the patient")
	f.StringVar(&since, "since", "", "only events from then on: 2026-05-01, 2026-05-01T08:00 (local time), an RFC 3339 time, or a duration back from now (72h)")
	f.StringVar(&user, "user", "", "only what this user did (without --patient: all of it, the changes of users, groups and API tokens among it)")
	f.StringVar(&format, "format", "table", "table or json")
	c.AddCommand(&cobra.Command{
		Use:   "verify --tenant ALIAS --admin NAME",
		Short: "check every chain of the audit trail and name the first break; exits 1 on a break",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withTrail(cmd.Context(), login, func(ctx context.Context, t *audit.Trail) error {
				r, err := t.Verify(ctx)
				if err != nil {
					return err
				}
				return e.printReport(r)
			})
		},
	})
	return c
}

// withTrail logs the admin in, opens a session of the audit trail (its login event), runs f in
// it and closes it.
func (e *env) withTrail(ctx context.Context, o loginOptions, f func(context.Context, *audit.Trail) error) error {
	l, err := e.asAdmin(ctx, o, "reading the audit trail", "red audit")
	if err != nil {
		return err
	}
	defer l.close()
	return f(access.With(ctx, l.who), l.trail)
}

// parseSince reads --since: a date or local date-time, an RFC 3339 time, or a duration back from
// now; "" is the beginning.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q is no time: give 2026-05-01, 2026-05-01T08:00, an RFC 3339 time or a duration such as 72h", s)
}

func (e *env) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.io.Out, "%s\n", b)
	return err
}

// printEvents writes the events as a table, in local time.
func (e *env) printEvents(patient, user string, found []audit.Found) {
	if len(found) == 0 {
		switch {
		case patient == "":
			fmt.Fprintf(e.io.Out, "red: the audit trail holds no event of user %s\n", user)
		case user == "":
			fmt.Fprintf(e.io.Out, "red: the audit trail holds no event concerning Patient/%s\n", patient)
		default:
			fmt.Fprintf(e.io.Out, "red: the audit trail holds no event of user %s concerning Patient/%s\n", user, patient)
		}
		return
	}
	zone, _ := time.Now().Zone()
	w := tabwriter.NewWriter(e.io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "TIME (%s)\tUSER\tWORKSTATION\tCLIENT\tACTION\tWHAT\tOUTCOME\n", zone)
	for _, f := range found {
		outcome := f.Outcome
		if !f.Succeeded() && f.Status != 0 {
			outcome += " (" + strconv.Itoa(f.Status) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.At.Local().Format(time.DateTime), or(f.User, "red (background)"),
			or(f.Workstation, "-"), or(f.Client, "-"), f.Action, what(f.Event), outcome)
	}
	w.Flush()
}

// what says what an event was about in a few words.
func what(ev audit.Event) string {
	switch ev.Action {
	case audit.Login, audit.Logout, audit.Operation, audit.Verify:
		return or(ev.Operation, ev.Type)
	case audit.Search:
		return fmt.Sprintf("%s search, %d found", ev.Type, len(ev.Entities))
	case audit.VRead:
		if len(ev.Entities) == 1 {
			return fmt.Sprintf("%s version %d", ev.Type, ev.Entities[0].Version)
		}
	}
	var types []string
	for _, en := range ev.Entities {
		if len(types) == 0 || types[len(types)-1] != en.Type {
			types = append(types, en.Type)
		}
	}
	s := or(strings.Join(types, ", "), ev.Type)
	if ev.Operation != "" {
		s += " (" + ev.Operation + ")"
	}
	return s
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// printReport writes what verify found, chain by chain, and fails on a break.
func (e *env) printReport(r audit.Report) error {
	for _, c := range r.Chains {
		who := fmt.Sprintf("%s on %s, started %s", or(c.User, "?"), or(c.Workstation, "?"), c.Started.Local().Format(time.DateTime))
		switch {
		case c.Break != nil:
			fmt.Fprintf(e.io.Out, "BREAK  chain %s (%s): record %d: %s\n", c.Chain, who, c.Break.Seq, c.Break.What)
		case c.Closed != "":
			fmt.Fprintf(e.io.Out, "ok     chain %s (%s): %d records, closed %s (%s); last MAC %s\n", c.Chain, who, c.Records,
				c.Last.Local().Format(time.DateTime), c.Closed, shortMAC(c.MAC))
		default:
			fmt.Fprintf(e.io.Out, "open   chain %s (%s): %s; last MAC %s\n", c.Chain, who, c.Unclosed(), shortMAC(c.MAC))
		}
	}
	if b := r.First(); b != nil {
		return fmt.Errorf("the audit trail is broken: %s", b)
	}
	fmt.Fprintf(e.io.Out, "red: the audit trail is intact: %d chains, %d records, %d events\n", len(r.Chains), r.Records, r.Events)
	return nil
}

func shortMAC(mac []byte) string {
	if len(mac) > 8 {
		mac = mac[:8]
	}
	return hex.EncodeToString(mac)
}
