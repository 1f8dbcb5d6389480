package records_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault/vaulttest"
)

// knownGroups are the tenant's user groups in these tests; the practice O4001 of
// patientenakte.xml is none, so its Provenance puts nothing into a group.
type knownGroups []string

func (g knownGroups) IsGroup(_ context.Context, id string) (bool, error) {
	return slices.Contains(g, id), nil
}

var (
	kardio = access.Principal{Tenant: "praxis", User: "anna", Roles: []access.Role{access.Physician}, Groups: []string{"kardio"}}
	ortho  = access.Principal{Tenant: "praxis", User: "bert", Roles: []access.Role{access.Physician}, Groups: []string{"ortho"}}
	both   = access.Principal{Tenant: "praxis", User: "carl", Roles: []access.Role{access.Assistant}, Groups: []string{"ortho", "kardio"}}
	chefin = access.Principal{Tenant: "praxis", User: "dora", Roles: []access.Role{access.Admin}}
	nobody = access.Principal{Tenant: "praxis", User: "emil", Roles: []access.Role{access.Assistant}}
)

// groupEntries are Patient P7001 with an Encounter and a Condition (copies of the
// Patientenakte's P1001, E2001, C5001), as one would post them for a patient of a group.
func groupEntries(t testing.TB) []string {
	r := strings.NewReplacer("P1001", "P7001", "E2001", "E7001", "C5001", "C7001")
	return []string{r.Replace(akteEntry(t, "Patient", "P1001")), r.Replace(akteEntry(t, "Encounter", "E2001")), r.Replace(akteEntry(t, "Condition", "C5001"))}
}

// provenance puts targets into the user group of Organization/group.
func provenance(id, group string, targets ...string) string {
	var ts strings.Builder
	for _, t := range targets {
		ts.WriteString(`<target><reference value="` + t + `"/></target>`)
	}
	return `<entry><fullUrl value="urn:uuid:` + id + `"/><resource><Provenance><id value="` + id + `"/>` +
		`<meta><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Provenienz|1.2.0"/></meta>` + ts.String() +
		`<recorded value="2026-11-30T08:00:00+01:00"/>` +
		`<activity><coding><system value="http://terminology.hl7.org/CodeSystem/v3-DataOperation"/><code value="CREATE"/></coding></activity>` +
		`<agent><role><coding><system value="http://terminology.hl7.org/CodeSystem/contractsignertypecodes"/><code value="PRIMAUTH"/></coding></role>` +
		`<who><reference value="Practitioner/A3002"/></who><onBehalfOf><reference value="Organization/` + group + `"/></onBehalfOf></agent>` +
		`</Provenance></resource></entry>`
}

// groupService is a records service holding patientenakte.xml (tenant-wide) and bundle 30000:
// P7001, E7001, C7001 and Provenance PV7001, posted by a member of kardio into kardio.
func groupService(t *testing.T) *records.Service {
	t.Helper()
	b, _ := vaulttest.Barrier(t)
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	s := &records.Service{Tenant: "praxis", Store: b, Now: func() time.Time { return at }, Groups: knownGroups{"kardio", "ortho"}}
	if _, err := postRaw(t, s, readBundle(t, "patientenakte.xml")); err != nil {
		t.Fatal(err)
	}
	if _, err := postAs(t, s, kardio, bundle("30000", "history", append(groupEntries(t), provenance("PV7001", "kardio", "Patient/P7001", "Encounter/E7001", "Condition/C7001"))...)); err != nil {
		t.Fatal(err)
	}
	return s
}

func postAs(t testing.TB, s *records.Service, p access.Principal, body []byte) (string, error) {
	t.Helper()
	b, err := fhir.Parse(body, fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.PostBundle(access.With(context.Background(), p), b)
	if err != nil {
		return "", err
	}
	return string(fhir.Document(resp)), nil
}

// outcome is what a caller reads of err.
func outcome(err error) string {
	is, status := fhir.Explain(err)
	return string(rune('0'+status/100)) + " " + is.Error()
}

func TestGroupDataIsHiddenFromOtherGroups(t *testing.T) {
	s := groupService(t)
	never := func(ctx context.Context, typ string) string {
		_, err := s.Read(ctx, typ, "never-posted")
		return outcome(err)
	}
	type search struct {
		typ, query string
		member     int // the total a member of kardio finds; others find member-hidden
		hidden     int
	}
	searches := []search{
		{"Patient", "_id=P7001", 1, 1},
		{"Patient", "_id=P7001,P1001", 2, 1},
		{"Patient", "identifier=http://fhir.de/NamingSystem/gkv/kvid-10|M123456785", 2, 1},
		{"Patient", "family=Musterfrau", 2, 1},
		{"Patient", "page=1", 2, 1},
		{"Encounter", "subject=Patient/P7001", 1, 1},
		{"Condition", "encounter=Encounter/E7001", 1, 1},
		{"Condition", "patient=P7001", 1, 1},
		{"Condition", "subject=Patient/P7001&_count=1&page=1", 1, 1},
		{"PractitionerRole", "organization=Organization/O4001", 1, 0},
		{"Provenance", "target=Condition/C7001", 1, 1},
		{"Provenance", "page=1", 2, 1},
	}
	for _, tc := range []struct {
		name string
		who  *access.Principal
		sees bool
	}{
		{"the background sees it", nil, true},
		{"a member sees it", &kardio, true},
		{"a member of two groups sees it", &both, true},
		{"an admin sees it", &chefin, true},
		{"a member of another group does not", &ortho, false},
		{"a member of no group does not", &nobody, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.who != nil {
				ctx = access.With(ctx, *tc.who)
			}
			for _, ref := range []string{"Patient/P7001", "Encounter/E7001", "Condition/C7001", "Provenance/PV7001"} {
				typ, id, _ := strings.Cut(ref, "/")
				_, err := s.Read(ctx, typ, id)
				if tc.sees && err != nil {
					t.Errorf("read %s: %v", ref, err)
				}
				if !tc.sees && outcome(err) != never(ctx, typ) {
					t.Errorf("read %s = %q, want the answer for an id never posted: %q", ref, outcome(err), never(ctx, typ))
				}
				_, err = s.ReadVersion(ctx, typ, id, "1")
				if !tc.sees && outcome(err) != never(ctx, typ) || tc.sees && err != nil {
					t.Errorf("read %s version 1: %q", ref, outcome(err))
				}
			}
			for _, sc := range searches {
				q, err := url.ParseQuery(sc.query)
				if err != nil {
					t.Fatal(err)
				}
				set, err := s.Search(ctx, sc.typ, q)
				if err != nil {
					t.Fatalf("%s?%s: %v", sc.typ, sc.query, err)
				}
				want := sc.member
				if !tc.sees {
					want -= sc.hidden
				}
				if set.Total != want {
					t.Errorf("%s?%s: total %d, want %d", sc.typ, sc.query, set.Total, want)
				}
				for _, e := range set.Entries {
					if !tc.sees && strings.Contains(e.FullURL, "7001") {
						t.Errorf("%s?%s lists %s", sc.typ, sc.query, e.FullURL)
					}
				}
				for _, l := range set.Links { // the links carry the search, never the hidden data
					if strings.Contains(l.URL, "7001") {
						t.Errorf("%s?%s: link %s", sc.typ, sc.query, l.URL)
					}
				}
			}
		})
	}
}

func TestGroupRulesOnPosting(t *testing.T) {
	p7001 := groupEntries(t)[0]
	condition := func(id string) string { // a new diagnosis of P7001
		return strings.ReplaceAll(groupEntries(t)[2], "C7001", id)
	}
	deleteEntry := `<entry><request><method value="DELETE"/><url value="Patient/P7001"/></request></entry>`
	for _, tc := range []struct {
		name    string
		who     access.Principal
		bundle  []byte
		refused string // the refusing issue's location and start of its message; "" when stored
	}{
		{"a member of another group may not write over a group's patient", ortho, bundle("", "transaction", put(p7001)),
			"Bundle.entry[0].resource: Patient/P7001 cannot be written: the id is taken by data you may not see"},
		{"a member of another group may not refer to a group's patient", ortho, bundle("", "history", condition("C7002")),
			"Bundle.entry[0].resource.subject.reference: refers to Patient P7001, which exists neither in this bundle nor in red"},
		{"a member may not put data into a group it is no member of", ortho,
			bundle("", "history", condition("C7003"), provenance("PV7003", "kardio", "Condition/C7003")),
			"Bundle.entry[1].resource.agent.onBehalfOf.reference: names user group kardio, of which you are no member"},
		{"a Provenance may not put a resource the bundle does not write into a group", chefin,
			bundle("", "history", provenance("PV7004", "ortho", "Patient/P1001")),
			"Bundle.entry[0].resource.target.reference: puts a resource into user group ortho that this bundle does not write"},
		{"a resource belongs to one group, whichever Provenance says so first", chefin,
			bundle("", "history", condition("C7005"), provenance("PV7005", "kardio", "Condition/C7005"), provenance("PV7006", "ortho", "Condition/C7005")),
			"Bundle.entry[2].resource.target.reference: puts Condition/C7005 into user group ortho, which another Provenance of this bundle puts into kardio"},
		{"a member writes its group's patient", kardio, bundle("", "history", p7001), ""},
		{"a member adds to its group", kardio, bundle("", "history", condition("C7007"), provenance("PV7007", "kardio", "Condition/C7007")), ""},
		{"an admin puts data into any group", chefin, bundle("", "history", condition("C7008"), provenance("PV7008", "ortho", "Condition/C7008")), ""},
		{"a member of another group deletes a group's patient as one never posted", ortho, bundle("", "transaction", deleteEntry), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := groupService(t)
			resp, err := postAs(t, s, tc.who, tc.bundle)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, %s; want refused with %q", err, resp, tc.refused)
			}
			if strings.Contains(string(tc.bundle), "DELETE") && !strings.Contains(resp, `<status value="204 No Content"/>`) {
				t.Errorf("deletion answered %s", resp)
			}
			if _, err := s.Read(access.With(context.Background(), kardio), "Patient", "P7001"); err != nil {
				t.Errorf("the group's patient: %v", err)
			}
		})
	}
}

func put(entry string) string {
	return strings.Replace(entry, "</entry>", `<request><method value="PUT"/><url value="Patient/P7001"/></request></entry>`, 1)
}

func TestGroupOfAResourceWrittenAgain(t *testing.T) {
	s := groupService(t)
	p7001 := groupEntries(t)[0]
	sees := func(p access.Principal) bool {
		_, err := s.Read(access.With(context.Background(), p), "Patient", "P7001")
		return err == nil
	}
	// written again without a Provenance: it stays in kardio
	if _, err := postAs(t, s, kardio, bundle("", "history", p7001)); err != nil {
		t.Fatal(err)
	}
	if !sees(kardio) || sees(ortho) {
		t.Errorf("after an update without Provenance: kardio sees it %v, ortho %v; want true, false", sees(kardio), sees(ortho))
	}
	// a member of both moves it to ortho: kardio loses it, its history with it
	if _, err := postAs(t, s, both, bundle("", "history", p7001, provenance("PV7010", "ortho", "Patient/P7001"))); err != nil {
		t.Fatal(err)
	}
	if sees(kardio) || !sees(ortho) {
		t.Errorf("after the move: kardio sees it %v, ortho %v; want false, true", sees(kardio), sees(ortho))
	}
	for v := range 3 {
		_, err := s.ReadVersion(access.With(context.Background(), ortho), "Patient", "P7001", string(rune('1'+v)))
		if wantSeen := v == 2; wantSeen != (err == nil) {
			t.Errorf("ortho reads version %d: %v; want seen %v (versions 1 and 2 were kardio's)", v+1, err, wantSeen)
		}
	}
	if _, err := s.ReadVersion(access.With(context.Background(), kardio), "Patient", "P7001", "1"); outcome(err) != "4 no Patient with this id" {
		t.Errorf("kardio reads version 1 of what moved away: %q", outcome(err))
	}
}

func TestDeleteBundleOfAGroup(t *testing.T) {
	s := groupService(t)
	as := func(p access.Principal) context.Context { return access.With(context.Background(), p) }
	if _, err := s.DeleteBundle(as(ortho), "30000"); outcome(err) != "4 no bundle with this id was posted" {
		t.Errorf("ortho deletes kardio's bundle: %q", outcome(err))
	}
	// ortho deletes the tenant-wide Patientenakte: what kardio's data refers to stays
	resp, err := s.DeleteBundle(as(ortho), "20000")
	if err != nil {
		t.Fatal(err)
	}
	out := string(fhir.Document(resp))
	for _, ref := range []string{"PractitionerRole/R3001", "Organization/O4001", "Practitioner/A3002"} {
		typ, id, _ := strings.Cut(ref, "/")
		if _, err := s.Read(as(ortho), typ, id); err != nil {
			t.Errorf("%s, which kardio's encounter refers to, was deleted: %v\n%s", ref, err, out)
		}
	}
	for _, id := range []string{"P7001", "E7001", "C7001", "PV7001"} {
		if strings.Contains(out, id) {
			t.Errorf("the answer names kardio's %s:\n%s", id, out)
		}
	}
	resp, err = s.DeleteBundle(as(kardio), "30000")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(fhir.Document(resp)), `<status value="204 No Content"/>`); n != 4 {
		t.Errorf("kardio deleted %d of its 4 resources:\n%s", n, fhir.Document(resp))
	}
}

// TestGroupAssignmentWithoutDirectory: a service that knows no user groups takes every
// Organization a Provenance acts on behalf of for one, also one stored nowhere.
func TestGroupAssignmentWithoutDirectory(t *testing.T) {
	s := newService(t)
	b := bundle("", "history", strings.ReplaceAll(akteEntry(t, "Practitioner", "A3002"), "A3002", "A7100"),
		provenance("PV7100", "base_user_group_admin", "Practitioner/A7100"))
	b = []byte(strings.ReplaceAll(string(b), `<who><reference value="Practitioner/A3002"/>`, `<who><reference value="Practitioner/A7100"/>`))
	if _, err := postAs(t, s, chefin, b); err != nil {
		t.Fatal(err)
	}
	admins := access.Principal{Tenant: "praxis", User: "fritz", Groups: []string{"base_user_group_admin"}}
	for _, tc := range []struct {
		who  access.Principal
		sees bool
	}{{admins, true}, {nobody, false}} {
		if _, err := s.Read(access.With(context.Background(), tc.who), "Practitioner", "A7100"); (err == nil) != tc.sees {
			t.Errorf("%s reads the practitioner: %v, want seen %v", tc.who.User, err, tc.sees)
		}
	}
}
