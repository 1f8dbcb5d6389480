package records

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/vault"
)

// entry is one entry of a posted bundle on its way to storage.
type entry struct {
	index   int
	at      string // Bundle.entry[i].resource
	typ, id string
	res     *etree.Element // nil for DELETE
	method  string         // PUT (RED's history bundles), POST or DELETE
	fullURL string

	expect  int64
	version int64

	refs     []refSite // its references, once looked for (refsRead)
	refsRead bool
}

func (e *entry) key() string { return e.typ + "/" + e.id }

// references are the references in the entry's resource, looked for once.
func (e *entry) references() []refSite {
	if !e.refsRead && e.res != nil {
		e.refs, e.refsRead = references(e.res, e.at), true
	}
	return e.refs
}

// PostBundle stores a bundle atomically: a KBV AWS Patientenakte (type history, RED's way), or a
// standard FHIR transaction; a batch stores each entry on its own. The resource id is the identity
// (RED: Patient.id is the patient's id); an id that exists already gets its next version. Every
// resource is checked as if entered by hand; references must resolve inside the bundle or to
// stored resources. When anything is wrong, nothing is stored and all problems come back at once.
func (s *Service) PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error) {
	now := s.now() // one clock read: every entry's lastUpdated is the answer's time
	bt, bundleID, entries, issues, err := s.readBundle(b)
	if err != nil {
		return nil, err
	}
	if bt == "batch" {
		return s.batch(ctx, bundleID, entries, now)
	}
	p, err := s.prepare(ctx, bundleID, entries, issues, now)
	if err != nil {
		return nil, err
	}
	if err := s.CommitPrepared(ctx, []*Prepared{p}); err != nil {
		return nil, err
	}
	return p.Response(), nil
}

// readBundle reads a posted bundle's type, id and entries. Issues that leave nothing to check
// further refuse the bundle at once (err); others come back to be reported with the checks'.
func (s *Service) readBundle(b *etree.Element) (bt, bundleID string, entries []*entry, issues fhir.Issues, err error) {
	if b.Tag != "Bundle" {
		return "", "", nil, nil, fhir.Fail(fhir.CodeStructure, b.Tag, "expected a Bundle, got %s", b.Tag)
	}
	bt = fhir.ChildValue(b, "type")
	switch bt {
	case "history", "transaction", "batch":
	case "":
		issues = append(issues, errorAt(fhir.CodeRequired, "Bundle.type", "Bundle.type is required: history (a KBV AWS Patientenakte), transaction or batch"))
	default:
		issues = append(issues, errorAt(fhir.CodeNotSupported, "Bundle.type", "Bundle.type %q is not accepted: send history (a KBV AWS Patientenakte), transaction or batch", bt))
	}
	bundleID = fhir.ChildValue(b, "id")
	if bundleID == "." || bundleID == ".." { // a DELETE of the bundle could not name it
		issues = append(issues, errorAt(fhir.CodeValue, "Bundle.id", "%s", fhir.IDRule))
	}
	entries, more := s.readEntries(b, bt)
	issues = append(issues, more...)
	if len(entries) == 0 && len(issues) == 0 {
		issues = append(issues, errorAt(fhir.CodeRequired, "Bundle.entry", "the bundle has no entries"))
	}
	if hasErrors(issues) && (bt == "batch" || len(entries) == 0) {
		return "", "", nil, nil, fhir.Reject(issues)
	}
	if !fhir.ValidID(bundleID) { // RED's bundles may come without a usable id: red makes one up
		bundleID = newID()
	}
	return bt, bundleID, entries, issues, nil
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
			if !fhir.ValidID(id) {
				issues = append(issues, errorAt(fhir.CodeValue, at+".request.url", "%s", fhir.IDRule))
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
func (s *Service) batch(ctx context.Context, bundleID string, entries []*entry, now time.Time) (*etree.Element, error) {
	var outcomes []fhir.Outcome
	for _, e := range entries {
		got, err := s.apply(ctx, bundleID, []*entry{e}, nil, now)
		if err == nil {
			outcomes = append(outcomes, got...)
			continue
		}
		is, status := fhir.Explain(err)
		if is == nil {
			return nil, err
		}
		outcomes = append(outcomes, fhir.Outcome{Type: e.typ, ID: e.id, Status: status, Issues: is})
	}
	return fhir.TransactionResponse(bundleID, "batch-response", now, outcomes), nil
}

// plan is a bundle on its way to one atomic commit.
type plan struct {
	bundleID string
	entries  []*entry
	now      time.Time
	inBundle map[string]*entry         // "Type/id" → entry
	alias    map[string]string         // "Type/id" and fullUrl → "Type/id"
	heads    map[string]vault.Resource // current versions of entries and reference targets
	pins     []pin                     // references to make version-specific
	refs     map[*entry][]string       // "Type/id" each entry refers to
	patients map[string][]string       // patients of entries that do not name their own
	warnings map[int]fhir.Issues       // non-error findings by entry index
	// groups holds the user group each entry is written into (groups.go); groupSites the
	// Provenance references naming a user group, which need name no stored Organization.
	groups     map[*entry]string
	groupSites map[*etree.Element]bool
}

// pin is a reference to make version-specific, as RED returns them.
type pin struct {
	site    refSite
	key     string
	version int64 // the version the client named, 0 for the current one
}

// apply checks entries and writes them as one atomic commit together with the bundle's record;
// issues found earlier are reported together with the checks' findings.
func (s *Service) apply(ctx context.Context, bundleID string, entries []*entry, issues fhir.Issues, now time.Time) ([]fhir.Outcome, error) {
	p, err := s.prepare(ctx, bundleID, entries, issues, now)
	if err != nil {
		return nil, err
	}
	if err := s.CommitPrepared(ctx, []*Prepared{p}); err != nil {
		return nil, err
	}
	return p.outcomes, nil
}

func newPlan(bundleID string, entries []*entry, now time.Time) *plan {
	p := &plan{bundleID: bundleID, entries: entries, now: now, inBundle: map[string]*entry{}, alias: map[string]string{}, refs: map[*entry][]string{},
		groups: map[*entry]string{}, groupSites: map[*etree.Element]bool{}}
	for _, e := range entries {
		p.inBundle[e.key()] = e
		p.alias[e.key()] = e.key()
		if e.fullURL != "" {
			p.alias[e.fullURL] = e.key()
		}
	}
	return p
}

// check validates every resource as if entered by hand: against its profile, then red's rules of
// plausibility, judged as mode says.
func (p *plan) check(mode kbv.Mode) fhir.Issues {
	var issues fhir.Issues
	for _, e := range p.entries {
		if e.res != nil {
			issues = append(issues, validate.Resource(e.res, e.at, kbv.Options{Now: p.now, Mode: mode})...)
		}
	}
	return issues
}

// resolve finds what every reference names — an entry (by id or fullUrl) or a stored resource —
// and refuses references to nothing, to deleted entries and to versions that do not exist.
func (p *plan) resolve() fhir.Issues {
	var issues fhir.Issues
	for _, e := range p.entries {
		if e.res == nil {
			continue
		}
		for _, site := range e.references() {
			pin, issue := p.resolveOne(site)
			if issue != nil {
				issues = append(issues, *issue)
				continue
			}
			if pin != nil {
				p.pins = append(p.pins, *pin)
				p.refs[e] = append(p.refs[e], pin.key)
			}
		}
	}
	return issues
}

// resolveOne resolves one reference: a pin, nothing (contained, external or a type red does
// not resolve) or the issue that refuses it.
func (p *plan) resolveOne(site refSite) (*pin, *fhir.Issue) {
	val := site.el.SelectAttrValue("value", "")
	key, ok := p.alias[val]
	if !ok {
		typ, id, local := localRef(val)
		switch {
		case strings.HasPrefix(val, "urn:"):
			return nil, issueAt(fhir.CodeInvalid, site.path(), "refers to an entry that is not in this bundle")
		case !local || !Supported(typ):
			return nil, nil
		}
		key = typ + "/" + id
		if _, ok := p.inBundle[key]; !ok {
			if r := p.heads[key]; r.Version == 0 || r.Deleted {
				if p.groupSites[site.el] { // a user group, which need be no stored Organization
					return nil, nil
				}
				return nil, issueAt(fhir.CodeInvalid, site.path(), "refers to %s %s, which exists neither in this bundle nor in red", typ, id)
			}
		}
	}
	target := p.inBundle[key]
	if target != nil && target.method == "DELETE" {
		return nil, issueAt(fhir.CodeInvalid, site.path(), "refers to a resource this bundle deletes")
	}
	named := historyVersion(val)
	if latest := p.heads[key].Version + boolInt(target != nil); named > latest {
		return nil, issueAt(fhir.CodeInvalid, site.path(), "refers to version %d of %s, which does not exist", named, key)
	}
	return &pin{site, key, named}, nil
}

func issueAt(code fhir.IssueCode, at, format string, args ...any) *fhir.Issue {
	is := errorAt(code, at, format, args...)
	return &is
}

// byEntry sorts findings that do not stop the bundle by entry: each entry's answer carries its own.
func byEntry(issues fhir.Issues) map[int]fhir.Issues {
	out := map[int]fhir.Issues{}
	for _, is := range issues {
		if n := entryIndex(is.Expression); n >= 0 {
			out[n] = append(out[n], is)
		}
	}
	return out
}

// version gives each entry the version it writes and makes references version-specific, as RED
// returns them.
func (p *plan) version() {
	for _, e := range p.entries {
		r := p.heads[e.key()]
		e.expect, e.version = r.Version, r.Version+1
		if e.method == "DELETE" && (r.Version == 0 || r.Deleted) {
			e.version = 0 // nothing to delete
		}
	}
	for _, pn := range p.pins {
		v := pn.version
		switch t := p.inBundle[pn.key]; {
		case v > 0:
		case t != nil:
			v = t.version
		default:
			v = p.heads[pn.key].Version
		}
		fhir.SetValue(pn.site.el, pn.key+"/_history/"+strconv.FormatInt(v, 10))
	}
}

// writes turns the entries into writes for the barrier (meta, narrative and search values set)
// and the answer for each entry.
func (p *plan) writes() ([]vault.Write, []fhir.Outcome) {
	var writes []vault.Write
	var outcomes []fhir.Outcome
	for _, e := range p.entries {
		if e.version == 0 {
			outcomes = append(outcomes, fhir.Outcome{Type: e.typ, ID: e.id, Status: http.StatusNoContent})
			continue
		}
		w := vault.Write{Type: e.typ, ID: e.id, Expect: e.expect, Updated: p.now, Group: p.groups[e]}
		out := fhir.Outcome{Type: e.typ, ID: e.id, Version: e.version, Modified: p.now, Status: http.StatusOK, Issues: p.warnings[e.index]}
		if e.expect == 0 {
			out.Status = http.StatusCreated
		}
		if e.method == "DELETE" {
			w.Deleted, out.Status = true, http.StatusNoContent
		} else {
			vs := strconv.FormatInt(e.version, 10)
			fhir.SetMeta(e.res, vs, fhir.Instant(p.now))
			setNarrative(e.res, vs, p.now)
			w.Body = fhir.Marshal(e.res)
			w.Index = searchValues(e.typ, e.res, p.refs[e], p.patients[e.key()])
		}
		writes = append(writes, w)
		outcomes = append(outcomes, out)
	}
	return writes, outcomes
}

// headRefs are what a bundle reads the current versions of: its record, its entries and the
// stored resources their references name, each once.
func headRefs(entries []*entry, bundleID string) []vault.Ref {
	var refs []vault.Ref
	seen := map[string]bool{}
	add := func(typ, id string) {
		if k := typ + "/" + id; !seen[k] {
			seen[k] = true
			refs = append(refs, vault.Ref{Type: typ, ID: id})
		}
	}
	add(bundleType, bundleID)
	for _, e := range entries {
		add(e.typ, e.id)
	}
	for _, e := range entries {
		if e.res == nil {
			continue
		}
		for _, site := range e.references() {
			if typ, id, ok := localRef(site.el.SelectAttrValue("value", "")); ok && Supported(typ) {
				add(typ, id)
			}
		}
	}
	return refs
}

// lookup reads the current versions of refs in one call, keyed "Type/id".
func (s *Service) lookup(ctx context.Context, refs []vault.Ref) (map[string]vault.Resource, error) {
	heads, err := s.Store.Heads(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]vault.Resource, len(heads))
	for _, h := range heads {
		out[h.Type+"/"+h.ID] = h
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

// searchValues are what a resource is found by: one per indexed search value, its patients, and
// one per reference (for finding what refers to a resource). The barrier indexes the id itself.
func searchValues(typ string, res *etree.Element, refs, patients []string) []vault.Term {
	var out []vault.Term
	for _, p := range kinds[typ].params {
		if p.values == nil {
			continue
		}
		for _, v := range p.values(res) {
			out = append(out, vault.Term{Index: p.index, Value: v})
		}
	}
	for _, v := range patients {
		out = append(out, vault.Term{Index: typ + ".patient", Value: v})
	}
	for _, r := range refs {
		out = append(out, vault.Term{Index: refIndex, Value: r})
	}
	return out
}

// refIndex is the blind index of every reference a resource makes.
const refIndex = "references"
