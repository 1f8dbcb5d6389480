package audit_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/fhirjson"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/vault/vaulttest"
)

func TestAuditEventSearch(t *testing.T) {
	b, _ := vaulttest.Barrier(t)
	tr := start(t, b, "anna", "ws-1")
	defer closeTrail(t, tr)
	r := service(tr, b)
	ben := acting("ben", "ws-2")
	post(t, ben, r, "patients.xml")
	for range 4 {
		if _, err := r.Read(ben, "Patient", "60151"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Read(acting("carla", "ws-3"), "Patient", "60152"); err != nil {
		t.Fatal(err)
	}
	admin := acting("anna", "ws-1", access.Admin)
	// the reads are queued: a search waits for them to be written by asking until all are there
	search := func(q url.Values) (fhir.SearchSet, error) { return tr.Search(admin, q) }
	var set fhir.SearchSet
	for deadline := time.Now().Add(5 * time.Second); set.Total < 5 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if set, err = search(url.Values{"patient": {"Patient/60151"}, "agent": {"ben"}}); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name  string
		q     url.Values
		total int
		code  fhir.IssueCode
	}{
		{"finds a patient's events by reference", url.Values{"patient": {"Patient/60151"}, "agent": {"ben"}}, 5, ""},
		{"finds a patient's events by id", url.Values{"patient": {"60152"}, "agent": {"ben"}}, 1, ""},
		{"finds one user's events", url.Values{"agent": {"carla"}}, 1, ""},
		{"finds events of today", url.Values{"date": {"ge" + time.Now().UTC().Format(time.DateOnly)}, "patient": {"60151"}, "agent": {"ben"}}, 5, ""},
		{"finds events within a range", url.Values{"date": {"gt2020-01-01", "le" + time.Now().UTC().Format(time.DateOnly)}, "agent": {"carla"}}, 1, ""},
		{"finds no events of tomorrow", url.Values{"date": {"ge" + time.Now().UTC().Add(24*time.Hour).Format(time.DateOnly)}}, 0, ""},
		{"finds no events before a date", url.Values{"date": {"lt2020-01-01"}}, 0, ""},
		{"refuses an unknown parameter", url.Values{"subtype": {"read"}}, 0, fhir.CodeNotSupported},
		{"refuses a patient of another type", url.Values{"patient": {"Practitioner/1"}}, 0, fhir.CodeValue},
		{"refuses a date without a date", url.Values{"date": {"ge-yesterday"}}, 0, fhir.CodeValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := search(c.q)
			if got := fhir.CodeOf(err); got != c.code {
				t.Fatalf("code %q (%v), want %q", got, err, c.code)
			}
			if err == nil && set.Total != c.total {
				t.Errorf("total %d, want %d", set.Total, c.total)
			}
		})
	}

	t.Run("answers R4 AuditEvents, newest first", func(t *testing.T) {
		set, err := search(url.Values{"patient": {"60151"}, "agent": {"ben"}})
		if err != nil {
			t.Fatal(err)
		}
		var last time.Time
		for i, e := range set.Entries {
			if _, err := fhirjson.Marshal(e.Resource); err != nil {
				t.Errorf("entry %d is no R4 AuditEvent: %v\n%s", i, err, fhir.Marshal(e.Resource))
			}
			at, _ := time.Parse(time.RFC3339, fhir.ChildValue(e.Resource, "recorded"))
			if i > 0 && at.After(last) {
				t.Errorf("entry %d at %s comes after %s", i, at, last)
			}
			last = at
			if !strings.HasPrefix(e.FullURL, "/AuditEvent/") {
				t.Errorf("fullUrl %s", e.FullURL)
			}
		}
		body := string(fhir.Marshal(set.Element()))
		for _, want := range []string{`<code value="create"/>`, `<code value="read"/>`, `<value value="ben"/>`, `<address value="ws-2"/>`,
			`<reference value="Patient/60151"/>`, `<system value="urn:red:id-token"/>`} {
			if !strings.Contains(body, want) {
				t.Errorf("the searchset lacks %s", want)
			}
		}
	})

	t.Run("pages with sealed links", func(t *testing.T) {
		set, err := search(url.Values{"patient": {"60151"}, "agent": {"ben"}, "_count": {"2"}})
		if err != nil || len(set.Entries) != 2 || set.Total != 5 {
			t.Fatalf("%d entries of %d: %v", len(set.Entries), set.Total, err)
		}
		var next string
		for _, l := range set.Links {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if !strings.HasPrefix(next, "/praxis/AuditEvent?page=2&_count=2&_q=") || strings.Contains(next, "60151") {
			t.Fatalf("next link %q", next)
		}
		u, _ := url.Parse(next)
		second, err := search(u.Query())
		if err != nil || len(second.Entries) != 2 || second.Total != 5 {
			t.Fatalf("second page: %d entries of %d: %v", len(second.Entries), second.Total, err)
		}
		if fhir.ChildValue(second.Entries[0].Resource, "id") == fhir.ChildValue(set.Entries[0].Resource, "id") {
			t.Error("the second page repeats the first")
		}
	})

	t.Run("refuses users who are no admin, and records that", func(t *testing.T) {
		_, err := tr.Search(acting("ben", "ws-2", access.Physician), url.Values{"patient": {"60151"}})
		if fhir.CodeOf(err) != fhir.CodeForbidden {
			t.Fatalf("a physician searched the audit trail: %v", err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			set, err := search(url.Values{"agent": {"ben"}, "patient": {"60151"}})
			if err != nil {
				t.Fatal(err)
			}
			if body := string(fhir.Marshal(set.Element())); strings.Contains(body, `<outcomeDesc value="forbidden (403)"/>`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the refusal is not in the trail; ben's events: %s", strconv.Itoa(set.Total))
			}
		}
	})
}
