package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/audit"
)

// TestNothingInPlaintext records reads, searches, writes and a TI action of named users,
// workstations and API clients concerning patients known by id and by KVNR, and finds none of
// them in the store's raw bytes: the trail is sealed like every record, and names resources by
// their tokens only.
func TestNothingInPlaintext(t *testing.T) {
	secrets := []string{
		"benedikt-geheim", "arbeitsplatz-geheim", "kasse-geheim", // who acted, where, with which client
		"60151", "60152", "X110614233", "K010124021", // the patients: ids and KVNRs
		"Quästorius", "Wilhelmine", // what a read answered
	}
	onBoth(t, func(t *testing.T, b backend) {
		tr := start(t, b.barrier, "benedikt-geheim", "arbeitsplatz-geheim")
		ctx := access.With(context.Background(), access.Principal{Tenant: "praxis", User: "benedikt-geheim",
			Workstation: "arbeitsplatz-geheim", Client: "kasse-geheim", Roles: []access.Role{access.Admin}})
		r := service(tr, b.barrier)
		post(t, ctx, r, "patients.xml")
		for _, id := range []string{"60151", "60152", "60153"} {
			_, _ = r.Read(ctx, "Patient", id)
		}
		if _, err := r.Search(ctx, "Patient", url.Values{"identifier": {"X110614233"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Telematik(stubTI{}).Do(ctx, "$getepastatus", url.Values{"patient": {"K010124021"}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Query(ctx, audit.Filter{Patient: "60151"}); err != nil {
			t.Fatal(err)
		}
		closeTrail(t, tr)
		raw := b.raw()
		if !bytes.Contains(raw, []byte("red:audit")) {
			t.Fatal("the raw bytes hold no audit record: the check itself is wrong")
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) || bytes.Contains(bytes.ToLower(raw), []byte(hex.EncodeToString([]byte(s)))) {
				t.Errorf("the store holds %q in plaintext", s)
			}
		}
	})
}
