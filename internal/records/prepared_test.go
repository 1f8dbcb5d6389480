package records_test

import (
	"context"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
)

func bundleOf(t testing.TB, typ string, entries ...string) *etree.Element {
	t.Helper()
	b, err := fhir.Parse([]byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="`+typ+`"/>`+strings.Join(entries, "")+`</Bundle>`), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Prepared bundles store nothing until committed, commit many at once, and answer as PostBundle.
func TestPrepareAndCommitBundles(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	a, err := s.PrepareBundle(ctx, bundleOf(t, "history", patient("pa")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PrepareBundle(ctx, bundleOf(t, "transaction", patient("pb"), patient("pc")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, "Patient", "pa"); fhir.CodeOf(err) != fhir.CodeNotFound {
		t.Fatalf("prepared, not committed: want not found, got %v", err)
	}
	if a.Resources() != 1 || b.Resources() != 2 || len(b.Writes()) != 3 {
		t.Fatalf("resources %d and %d, writes %d", a.Resources(), b.Resources(), len(b.Writes()))
	}
	read := map[string]bool{}
	for _, r := range b.Read() {
		read[r.Type+"/"+r.ID] = true
	}
	if !read["Patient/pb"] || !read["Patient/pc"] || len(read) != 3 { // and the bundle's record
		t.Fatalf("read: %v", read)
	}
	extra := vault.Write{Type: "red:test", ID: "x", Body: []byte("x")}
	if err := s.CommitPrepared(ctx, []*records.Prepared{a, b}, extra); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pa", "pb", "pc"} {
		if _, err := s.Read(ctx, "Patient", id); err != nil {
			t.Errorf("Patient %s: %v", id, err)
		}
	}
	if r, err := s.Store.Current(ctx, "red:test", "x"); err != nil || string(r.Body) != "x" {
		t.Errorf("the write committed along: %v %q", err, r.Body)
	}
	if resp := string(fhir.Marshal(b.Response())); strings.Count(resp, "201 Created") != 2 {
		t.Errorf("response:\n%s", resp)
	}

	// prepared against version 1, committed after another commit wrote version 2: nothing stored
	stale, err := s.PrepareBundle(ctx, bundleOf(t, "history", patient("pa")))
	if err != nil {
		t.Fatal(err)
	}
	if err := post(t, s, patient("pa")); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPrepared(ctx, []*records.Prepared{stale}); fhir.CodeOf(err) != fhir.CodeConflict {
		t.Fatalf("want a conflict, got %v", err)
	}

	cases := []struct {
		name string
		b    *etree.Element
		code fhir.IssueCode
	}{
		{"refuses a batch", bundleOf(t, "batch", patient("pd")), fhir.CodeNotSupported},
		{"refuses what PostBundle refuses", bundleOf(t, "history", `<entry><resource><Patient><id value="pe"/></Patient></resource></entry>`), fhir.CodeRequired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.PrepareBundle(ctx, c.b); fhir.CodeOf(err) != c.code {
				t.Fatalf("want %s, got %v", c.code, err)
			}
		})
	}
}
