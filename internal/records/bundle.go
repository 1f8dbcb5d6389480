package records

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/storage"
)

// idPattern accepts FHIR ids and the ids RED itself hands out (which may contain '$' and '_').
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.$_]{1,64}$`)

// pending is one checked entry waiting to be written.
type pending struct {
	typ, id string
	res     *etree.Element
}

// PostBundle checks a KBV AWS Patientenakte bundle (type history) and stores all of its entries
// atomically: an entry whose id exists already becomes that resource's next version. Nothing is
// stored when any entry has a problem; all problems come back together.
func (s *Service) PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error) {
	if b.Tag != "Bundle" {
		return nil, fhir.Fail(fhir.CodeStructure, b.Tag, "expected a Bundle, got %s", b.Tag)
	}
	var issues fhir.Issues
	bad := func(code fhir.IssueCode, at, format string, args ...any) {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
	}
	switch t := fhir.ChildValue(b, "type"); t {
	case "history":
	case "":
		bad(fhir.CodeRequired, "Bundle.type", "Bundle.type is required; red accepts KBV AWS Patientenakte bundles of type history")
	default:
		bad(fhir.CodeNotSupported, "Bundle.type", "Bundle.type %q is not accepted; red accepts KBV AWS Patientenakte bundles of type history", t)
	}
	entries := b.SelectElements("entry")
	if len(entries) == 0 {
		bad(fhir.CodeRequired, "Bundle.entry", "the bundle has no entries")
	}
	var todo []pending
	seen := map[string]int{}
	for i, e := range entries {
		at := "Bundle.entry[" + strconv.Itoa(i) + "].resource"
		res := fhir.ResourceOf(fhir.Child(e, "resource"))
		if res == nil {
			bad(fhir.CodeRequired, at, "each entry needs exactly one resource")
			continue
		}
		typ := res.Tag
		if !Supported(typ) {
			bad(fhir.CodeNotSupported, at, "%s entries are not stored yet; red stores %s", typ, supportedList())
			continue
		}
		id := fhir.ChildValue(res, "id")
		switch {
		case id == "":
			bad(fhir.CodeRequired, at+".id", "%s.id is required: it is the identity red stores the %s under", typ, typ)
			continue
		case !idPattern.MatchString(id):
			bad(fhir.CodeValue, at+".id", "%s.id must be 1 to 64 letters, digits, '-', '.', '_' or '$'", typ)
			continue
		}
		key := typ + "/" + id
		if j, dup := seen[key]; dup {
			bad(fhir.CodeInvalid, at+".id", "the same %s id appears in entry %d too", typ, j)
			continue
		}
		seen[key] = i
		todo = append(todo, pending{typ: typ, id: id, res: res})
	}
	if len(issues) > 0 {
		return nil, fhir.Reject(issues)
	}
	outcomes, err := s.write(ctx, todo)
	if err != nil {
		return nil, err
	}
	return fhir.TransactionResponse(newID(), s.now(), outcomes), nil
}

// write seals and commits checked entries as one atomic batch.
func (s *Service) write(ctx context.Context, todo []pending) ([]fhir.Outcome, error) {
	now := s.now()
	changes := make([]storage.Change, 0, len(todo))
	outcomes := make([]fhir.Outcome, 0, len(todo))
	for _, p := range todo {
		idTok, err := s.Vault.IDToken(p.typ, p.id)
		if err != nil {
			return nil, err
		}
		var expect int64
		switch cur, err := s.Store.Current(ctx, s.Tenant, p.typ, idTok); {
		case err == nil:
			expect = cur.Version
		case !errors.Is(err, storage.ErrNotFound):
			return nil, err
		}
		version := expect + 1
		fhir.SetMeta(p.res, strconv.FormatInt(version, 10), fhir.Instant(now))
		sealed, err := s.Vault.Seal(p.typ, idTok, version, fhir.Marshal(p.res))
		if err != nil {
			return nil, err
		}
		tokens, err := s.tokens(p.typ, idTok, p.res)
		if err != nil {
			return nil, err
		}
		changes = append(changes, storage.Change{Type: p.typ, ID: idTok, Expect: expect, Updated: now, Sealed: sealed, Tokens: tokens})
		outcomes = append(outcomes, fhir.Outcome{Type: p.typ, ID: p.id, Version: version, Created: expect == 0, Modified: now})
	}
	if err := s.Store.Commit(ctx, s.Tenant, changes); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, fhir.Fail(fhir.CodeConflict, "", "another workstation changed one of these resources at the same moment; nothing was stored — send the bundle again")
		}
		return nil, err
	}
	return outcomes, nil
}

// tokens derives a resource's blind search tokens: its id token plus one per indexed value.
func (s *Service) tokens(typ string, idTok []byte, res *etree.Element) ([][]byte, error) {
	out := [][]byte{idTok}
	for _, p := range kinds[typ].params {
		for _, v := range p.values(res) {
			t, err := s.Vault.Token(p.index, v)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func supportedList() string {
	return strings.Join(Types(), ", ")
}
