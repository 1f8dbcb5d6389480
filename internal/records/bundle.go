package records

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/storage"
)

// idPattern accepts FHIR ids and the ids RED itself hands out (which may contain '$' and '_').
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.$_]{1,64}$`)

// entry is one entry of a posted bundle on its way to storage.
type entry struct {
	index   int
	at      string // Bundle.entry[i].resource
	typ, id string
	res     *etree.Element // nil for DELETE
	method  string         // PUT (RED's history bundles), POST or DELETE
	fullURL string

	idTok   []byte
	expect  int64
	version int64
}

func (e *entry) key() string { return e.typ + "/" + e.id }

// PostBundle stores a bundle atomically: a KBV AWS Patientenakte (type history, RED's way), or a
// standard FHIR transaction; a batch stores each entry on its own. The resource id is the identity
// (RED: Patient.id is the patient's id); an id that exists already gets its next version. Every
// resource is checked as if entered by hand; references must resolve inside the bundle or to
// stored resources. When anything is wrong, nothing is stored and all problems come back at once.
func (s *Service) PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error) {
	if b.Tag != "Bundle" {
		return nil, fhir.Fail(fhir.CodeStructure, b.Tag, "expected a Bundle, got %s", b.Tag)
	}
	var issues fhir.Issues
	bt := fhir.ChildValue(b, "type")
	switch bt {
	case "history", "transaction", "batch":
	case "":
		issues = append(issues, errorAt(fhir.CodeRequired, "Bundle.type", "Bundle.type is required: history (a KBV AWS Patientenakte), transaction or batch"))
	default:
		issues = append(issues, errorAt(fhir.CodeNotSupported, "Bundle.type", "Bundle.type %q is not accepted: send history (a KBV AWS Patientenakte), transaction or batch", bt))
	}
	entries, more := s.readEntries(b, bt)
	issues = append(issues, more...)
	if len(entries) == 0 && len(issues) == 0 {
		issues = append(issues, errorAt(fhir.CodeRequired, "Bundle.entry", "the bundle has no entries"))
	}
	if hasErrors(issues) && (bt == "batch" || len(entries) == 0) {
		return nil, fhir.Reject(issues)
	}
	bundleID := fhir.ChildValue(b, "id")
	if bundleID == "" || !idPattern.MatchString(bundleID) {
		bundleID = newID()
	}
	now := s.now()
	if bt == "batch" {
		return s.batch(ctx, bundleID, entries)
	}
	outcomes, err := s.apply(ctx, bundleID, entries, issues)
	if err != nil {
		return nil, err
	}
	return fhir.TransactionResponse(bundleID, "transaction-response", now, outcomes), nil
}

func errorAt(code fhir.IssueCode, at, format string, args ...any) fhir.Issue {
	return fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)}
}

// historyVersion is n of a reference ending in /_history/n, 0 when it names no version.
func historyVersion(ref string) int64 {
	i := strings.LastIndex(ref, "/_history/")
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(ref[i+len("/_history/"):], 10, 64)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// entryIndex is N of an expression starting Bundle.entry[N], -1 for others.
func entryIndex(expr string) int {
	rest, ok := strings.CutPrefix(expr, "Bundle.entry[")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)])
	if err != nil {
		return -1
	}
	return n
}

func hasErrors(is fhir.Issues) bool {
	for _, i := range is {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			return true
		}
	}
	return false
}

// readEntries reads what each entry asks for. RED's bundles may omit request and fullUrl, and a
// fullUrl naming another id than resource.id loses to the resource id.
func (s *Service) readEntries(b *etree.Element, bundleType string) ([]*entry, fhir.Issues) {
	var (
		out    []*entry
		issues fhir.Issues
	)
	seen := map[string]int{}
	for i, el := range b.SelectElements("entry") {
		at := "Bundle.entry[" + strconv.Itoa(i) + "]"
		e := &entry{index: i, at: at + ".resource", fullURL: fhir.ChildValue(el, "fullUrl"), method: "PUT"}
		req := fhir.Child(el, "request")
		reqURL := fhir.ChildValue(req, "url")
		if m := fhir.ChildValue(req, "method"); m != "" && bundleType != "history" {
			e.method = m
		}
		switch e.method {
		case "PUT", "POST":
			e.res = fhir.ResourceOf(fhir.Child(el, "resource"))
			if e.res == nil {
				issues = append(issues, errorAt(fhir.CodeRequired, at+".resource", "each entry needs exactly one resource"))
				continue
			}
			fhir.Canonicalize(e.res)
			e.typ, e.id = e.res.Tag, fhir.ChildValue(e.res, "id")
			if e.method == "POST" {
				e.id = newResourceID()
				setID(e.res, e.id)
			} else if e.id == "" {
				if typ, id, ok := localRef(reqURL); ok && typ == e.typ {
					e.id = id
					setID(e.res, id)
				}
			}
		case "DELETE":
			typ, id, ok := localRef(reqURL)
			if !ok {
				issues = append(issues, errorAt(fhir.CodeValue, at+".request.url", "a DELETE entry names the resource as Type/id"))
				continue
			}
			e.typ, e.id = typ, id
		default:
			issues = append(issues, errorAt(fhir.CodeNotSupported, at+".request.method", "request.method %q is not accepted here: use PUT, POST or DELETE", e.method))
			continue
		}
		if !Stored(e.typ) {
			issues = append(issues, errorAt(fhir.CodeNotSupported, e.at, "%s entries cannot be stored", e.typ))
			continue
		}
		if e.id != "" {
			if j, dup := seen[e.key()]; dup {
				issues = append(issues, errorAt(fhir.CodeInvalid, e.at+".id", "the same %s id appears in entry %d too", e.typ, j))
				continue
			}
			seen[e.key()] = i
		}
		out = append(out, e)
	}
	return out, issues
}

func setID(res *etree.Element, id string) {
	el := res.SelectElement("id")
	if el == nil {
		el = etree.NewElement("id")
		res.InsertChildAt(0, el)
	}
	fhir.SetValue(el, id)
}

// batch applies each entry on its own and answers a batch-response.
func (s *Service) batch(ctx context.Context, bundleID string, entries []*entry) (*etree.Element, error) {
	var outcomes []fhir.Outcome
	for _, e := range entries {
		got, err := s.apply(ctx, bundleID, []*entry{e}, nil)
		if err == nil {
			outcomes = append(outcomes, got...)
			continue
		}
		var is fhir.Issues
		if !errors.As(err, &is) {
			return nil, err
		}
		outcomes = append(outcomes, fhir.Outcome{Type: e.typ, ID: e.id, Status: StatusOf(is.Code()), Issues: is})
	}
	return fhir.TransactionResponse(bundleID, "batch-response", s.now(), outcomes), nil
}

// StatusOf is the HTTP status line of an entry that failed with an issue code, for batch answers.
// (The API maps whole responses itself.)
func StatusOf(code fhir.IssueCode) string {
	switch code {
	case fhir.CodeNotFound:
		return "404 Not Found"
	case fhir.CodeConflict:
		return "409 Conflict"
	case fhir.CodeDeleted:
		return "410 Gone"
	}
	return "400 Bad Request"
}

// apply checks entries and writes them as one atomic commit together with the bundle's record;
// issues found earlier are reported together with the checks' findings.
func (s *Service) apply(ctx context.Context, bundleID string, entries []*entry, issues fhir.Issues) ([]fhir.Outcome, error) {
	now := s.now()
	inBundle := map[string]*entry{}
	alias := map[string]string{}
	for _, e := range entries {
		inBundle[e.key()] = e
		alias[e.key()] = e.key()
		if e.fullURL != "" {
			alias[e.fullURL] = e.key()
		}
	}
	for _, e := range entries {
		if e.res != nil {
			issues = append(issues, kbv.Check(e.res, e.at, now)...)
		}
	}
	// one round trip for the current versions of the entries and of what they refer to
	heads, err := s.heads(ctx, entries, bundleID)
	if err != nil {
		return nil, err
	}
	type pin struct {
		site    refSite
		key     string
		version int64 // the version the client named, 0 for the current one
	}
	var pins []pin
	refs := map[*entry][]string{}
	for _, e := range entries {
		if e.res == nil {
			continue
		}
		for _, site := range references(e.res, e.at) {
			val := site.el.SelectAttrValue("value", "")
			key, ok := alias[val]
			if !ok {
				typ, id, local := localRef(val)
				switch {
				case strings.HasPrefix(val, "urn:"):
					issues = append(issues, errorAt(fhir.CodeInvalid, site.path, "refers to an entry that is not in this bundle"))
					continue
				case !local || !Supported(typ):
					continue // contained, external or a type red does not resolve
				}
				key = typ + "/" + id
				if _, ok := inBundle[key]; !ok {
					if r := heads[key]; r.Version == 0 || r.Deleted {
						issues = append(issues, errorAt(fhir.CodeInvalid, site.path, "refers to %s %s, which exists neither in this bundle nor in red", typ, id))
						continue
					}
				}
			}
			target := inBundle[key]
			if target != nil && target.method == "DELETE" {
				issues = append(issues, errorAt(fhir.CodeInvalid, site.path, "refers to a resource this bundle deletes"))
				continue
			}
			named := historyVersion(val)
			if latest := heads[key].Version + boolInt(target != nil); named > latest {
				issues = append(issues, errorAt(fhir.CodeInvalid, site.path, "refers to version %d of %s, which does not exist", named, key))
				continue
			}
			pins = append(pins, pin{site, key, named})
			refs[e] = append(refs[e], key)
		}
	}
	if hasErrors(issues) {
		sort.SliceStable(issues, func(i, j int) bool { return entryIndex(issues[i].Expression) < entryIndex(issues[j].Expression) })
		return nil, fhir.Reject(issues)
	}

	// warnings do not stop a bundle; each entry's answer carries its own
	warnings := map[int]fhir.Issues{}
	for _, is := range issues {
		if n := entryIndex(is.Expression); n >= 0 {
			warnings[n] = append(warnings[n], is)
		}
	}

	// versions
	for _, e := range entries {
		r := heads[e.key()]
		e.idTok, e.expect, e.version = r.ID, r.Version, r.Version+1
		if e.method == "DELETE" && (r.Version == 0 || r.Deleted) {
			e.version = 0 // nothing to delete
		}
	}
	// version-specific references, as RED returns them
	for _, p := range pins {
		v := p.version
		switch t := inBundle[p.key]; {
		case v > 0:
		case t != nil:
			v = t.version
		default:
			v = heads[p.key].Version
		}
		fhir.SetValue(p.site.el, p.key+"/_history/"+strconv.FormatInt(v, 10))
	}

	var changes []storage.Change
	var outcomes []fhir.Outcome
	patientsOf, err := s.contextPatients(ctx, entries, inBundle)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.version == 0 {
			outcomes = append(outcomes, fhir.Outcome{Type: e.typ, ID: e.id, Status: "204 No Content"})
			continue
		}
		ch := storage.Change{Type: e.typ, ID: e.idTok, Expect: e.expect, Updated: now}
		out := fhir.Outcome{Type: e.typ, ID: e.id, Version: e.version, Modified: now, Status: "200 OK", Issues: warnings[e.index]}
		if e.expect == 0 {
			out.Status = "201 Created"
		}
		if e.method == "DELETE" {
			ch.Deleted, out.Status = true, "204 No Content"
		} else {
			vs := strconv.FormatInt(e.version, 10)
			fhir.SetMeta(e.res, vs, fhir.Instant(now))
			setNarrative(e.res, vs, now)
			sealed, err := s.Vault.Seal(e.typ, e.idTok, e.version, fhir.Marshal(e.res))
			if err != nil {
				return nil, err
			}
			ch.Sealed = sealed
			if ch.Tokens, err = s.tokens(e.typ, e.idTok, e.res, refs[e], patientsOf[e.key()]); err != nil {
				return nil, err
			}
		}
		changes = append(changes, ch)
		outcomes = append(outcomes, out)
	}
	rec, err := s.bundleRecord(ctx, bundleID, heads[bundleType+"/"+bundleID], outcomes, now)
	if err != nil {
		return nil, err
	}
	changes = append(changes, rec)
	if err := s.Store.Commit(ctx, s.Tenant, changes); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fhir.Fail(fhir.CodeConflict, "", "another workstation changed one of these resources at the same moment; nothing was stored — send the bundle again")
		}
		return nil, err
	}
	return outcomes, nil
}

// heads looks up, in one call, the current versions of the bundle's record, of the entries and
// of the stored resources their references name, keyed "Type/id".
func (s *Service) heads(ctx context.Context, entries []*entry, bundleID string) (map[string]storage.Record, error) {
	var names []string
	var keys []storage.Key
	seen := map[string]bool{}
	add := func(typ, id string) error {
		k := typ + "/" + id
		if seen[k] {
			return nil
		}
		seen[k] = true
		tok, err := s.Vault.IDToken(typ, id)
		if err != nil {
			return err
		}
		names = append(names, k)
		keys = append(keys, storage.Key{Type: typ, ID: tok})
		return nil
	}
	if err := add(bundleType, bundleID); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := add(e.typ, e.id); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		if e.res == nil {
			continue
		}
		for _, site := range references(e.res, e.at) {
			if typ, id, ok := localRef(site.el.SelectAttrValue("value", "")); ok && Supported(typ) {
				if err := add(typ, id); err != nil {
					return nil, err
				}
			}
		}
	}
	recs, err := s.Store.Heads(ctx, s.Tenant, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]storage.Record, len(recs))
	for i, r := range recs {
		out[names[i]] = r
	}
	return out, nil
}

// contextPatients maps entries to the patients they belong to where the resource does not name
// its patient itself: a Medication belongs to the patients whose MedicationStatement or
// MedicationRequest in the same bundle names it, else to the bundle's only Patient (a
// Patientenakte is one patient's record); a DocumentReference filed under an encounter
// (context.encounter, as RED files documents) belongs to that encounter's patient.
func (s *Service) contextPatients(ctx context.Context, entries []*entry, inBundle map[string]*entry) (map[string][]string, error) {
	out := map[string][]string{}
	var patients []string
	for _, o := range entries {
		switch o.typ {
		case "Patient":
			patients = append(patients, o.key())
		case "MedicationStatement", "MedicationRequest":
			if o.res == nil {
				continue
			}
			for _, m := range refValues(o.res, "medicationReference") {
				out[m] = append(out[m], refValues(o.res, "subject")...)
			}
		}
	}
	for _, e := range entries {
		switch {
		case e.res == nil:
		case e.typ == "Medication" && len(out[e.key()]) == 0 && len(patients) == 1:
			out[e.key()] = patients
		case e.typ == "DocumentReference" && len(refValues(e.res, "subject")) == 0:
			for _, enc := range refValues(e.res, "context/encounter") {
				if t := inBundle[enc]; t != nil && t.res != nil {
					out[e.key()] = append(out[e.key()], refValues(t.res, "subject")...)
					continue
				}
				el, err := s.Read(ctx, "Encounter", enc[len("Encounter/"):])
				if err != nil {
					return nil, err
				}
				out[e.key()] = append(out[e.key()], refValues(el, "subject")...)
			}
		}
	}
	return out, nil
}

// tokens derives a resource's blind tokens: its id token, one per indexed search value, and one per
// reference (for finding what refers to a resource).
func (s *Service) tokens(typ string, idTok []byte, res *etree.Element, refs, patients []string) ([][]byte, error) {
	out := [][]byte{idTok}
	add := func(index, v string) error {
		t, err := s.Vault.Token(index, v)
		if err == nil {
			out = append(out, t)
		}
		return err
	}
	for _, p := range kinds[typ].params {
		if p.values == nil {
			continue
		}
		for _, v := range p.values(res) {
			if err := add(p.index, v); err != nil {
				return nil, err
			}
		}
	}
	for _, v := range patients {
		if err := add(typ+".patient", v); err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		if err := add(refIndex, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// refIndex is the blind index of every reference a resource makes.
const refIndex = "references"
