package fhir

import (
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"
)

// Instant formats t the way red writes instants: UTC, millisecond precision.
func Instant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Link is one paging link of a search result.
type Link struct {
	Relation string // self, first, previous, next, last
	URL      string // relative, e.g. /demo/Patient?page=2
}

// Entry is one resource of a search result.
type Entry struct {
	FullURL  string // relative, e.g. /Patient/6006
	Resource *etree.Element
}

// SearchSet is a search result in RED's shape: paging links are sibling elements named after
// their relation (<self>, <first>, <previous>, <next>, <last>) with relative URLs, not FHIR <link>s.
type SearchSet struct {
	ID      string
	Updated time.Time
	Total   int
	Links   []Link
	Entries []Entry
}

// Element renders the search result.
func (s SearchSet) Element() *etree.Element {
	b := etree.NewElement("Bundle")
	b.CreateAttr("xmlns", Namespace)
	SetValue(b.CreateElement("id"), s.ID)
	SetValue(b.CreateElement("meta").CreateElement("lastUpdated"), Instant(s.Updated))
	SetValue(b.CreateElement("type"), "searchset")
	SetValue(b.CreateElement("total"), strconv.Itoa(s.Total))
	for _, l := range s.Links {
		le := b.CreateElement(l.Relation)
		SetValue(le.CreateElement("relation"), l.Relation)
		SetValue(le.CreateElement("url"), l.URL)
	}
	for _, e := range s.Entries {
		ee := b.CreateElement("entry")
		SetValue(ee.CreateElement("fullUrl"), e.FullURL)
		res := copyTree(e.Resource)
		res.CreateAttr("xmlns", Namespace)
		ee.CreateElement("resource").AddChild(res)
	}
	return b
}

// Outcome says what happened to one entry of a posted bundle.
type Outcome struct {
	Type, ID string
	Version  int64 // the version written; 0 when none was
	Status   int   // HTTP status, e.g. 201; shown as its status line ("201 Created")
	Modified time.Time
	Issues   Issues // for entries that failed, or notes on what was done
}

// Location is the version-specific relative URL of the stored entry.
func (o Outcome) Location() string {
	return fmt.Sprintf("%s/%s/_history/%d", o.Type, o.ID, o.Version)
}

// TransactionResponse renders the answer to a posted bundle (bundleType transaction-response or
// batch-response): one entry per posted entry, in order, each with status, version-specific
// location, ETag and last-modified instant, and an OperationOutcome where there is something to say.
func TransactionResponse(id, bundleType string, at time.Time, outcomes []Outcome) *etree.Element {
	b := etree.NewElement("Bundle")
	b.CreateAttr("xmlns", Namespace)
	SetValue(b.CreateElement("id"), id)
	SetValue(b.CreateElement("meta").CreateElement("lastUpdated"), Instant(at))
	SetValue(b.CreateElement("type"), bundleType)
	for _, o := range outcomes {
		resp := b.CreateElement("entry").CreateElement("response")
		SetValue(resp.CreateElement("status"), StatusLine(o.Status))
		if o.Version > 0 {
			SetValue(resp.CreateElement("location"), o.Location())
			SetValue(resp.CreateElement("etag"), fmt.Sprintf(`W/"%d"`, o.Version))
			SetValue(resp.CreateElement("lastModified"), Instant(o.Modified))
		}
		if len(o.Issues) > 0 {
			oo := OperationOutcome(o.Issues)
			oo.RemoveAttr("xmlns")
			resp.CreateElement("outcome").AddChild(oo)
		}
	}
	return b
}
