package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/records"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// The events a subscription may name as criteria instead of a search, as topic URIs (the
// subscriptions backport's topic-style criteria).
const (
	TopicPrefix     = "urn:red:event:"
	TaskAvailable   = "task-available"   // an e-prescription was signed and its Task is ready at the Fachdienst
	TaskStatus      = "task-status"      // a Task's status changed (activation, abort, a pharmacy's accept, reject, close)
	MessageReceived = "message-received" // the pharmacy fetched messages from the Fachdienst
	BundleDeleted   = "bundle-deleted"   // DELETE /{tenant}/Bundle/{id}
	resourceChanged = "resource-changed" // the event of a search criteria: a matching resource was written
)

var topics = []string{TaskAvailable, TaskStatus, MessageReceived, BundleDeleted}

// Topics are the events a subscription may name, as the topic URIs its criteria give.
func Topics() []string {
	out := make([]string, len(topics))
	for i, t := range topics {
		out[i] = TopicPrefix + t
	}
	return out
}

// The payload kinds (the backport's payload content).
const (
	IDOnly       = "id-only"
	FullResource = "full-resource"
)

const (
	payloadContentURL = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
	// SecretExtension carries the webhook secret in the answer that creates a subscription —
	// only there: red shows it once.
	SecretExtension = "urn:red:webhook-secret"
)

// Subscription statuses (R4). error is never stored in the subscription: it is read from the
// delivery cursor, so that the deliverer never conflicts with a client's change.
const (
	statusRequested = "requested"
	statusActive    = "active"
	statusError     = "error"
	statusOff       = "off"
)

// subscription is one stored Subscription.
type subscription struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"` // active or off
	Reason   string    `json:"reason,omitempty"`
	Criteria string    `json:"criteria"`
	Endpoint string    `json:"endpoint"`
	Payload  string    `json:"payload"` // IDOnly or FullResource
	Secret   string    `json:"secret"`  // whsec_ + base64 of 32 random bytes
	Created  time.Time `json:"created"`
	Audience audience  `json:"audience"` // whose view of the data its notifications follow

	version int64
	updated time.Time
	crit    *records.Criteria // nil for a topic
	topic   string            // the event name for topic criteria
}

// Service is one unlocked tenant's subscriptions: the API's use cases, the outbox (Wrap) and the
// deliverer (Run).
type Service struct {
	Tenant string
	Store  Store // the tenant's vault barrier, unwrapped
	// Hosts are endpoint host names the admin allows besides loopback (red serve
	// --notify-allow-host), in lower case; such an endpoint must use https.
	Hosts    []string
	Resolver Resolver         // looks up the endpoints' host names; nil: net.DefaultResolver
	Now      func() time.Time // nil: time.Now
	// Delivery tunes the deliverer; zero values take the defaults.
	Delivery Delivery

	mu     sync.Mutex
	gen    int64 // the generation record's version the cache was loaded at
	loaded bool
	subs   []*subscription
	kick   chan struct{}
	holder string // this deliverer's name in leases
	once   sync.Once
	// identifiers caches patients' identifiers by "Patient/id/_history/n" for the payloads
	// (several subscriptions notify of one patient's change); plaintext in memory only, like
	// every opened record.
	identifiers map[string]*identifier
	// tails caches the part of a notification's payload that is the same for every subscription
	// with the same payload content (Service.tail)
	tails map[string]*tail

	changed  atomic.Int64 // when a change was last committed through the outbox (Unix ns)
	carrying sync.Mutex   // guards carried
	carried  *carry       // the deliverer's commit waiting to go with the next change's
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return utc(s.Now())
	}
	return utc(time.Now())
}

func (s *Service) init() {
	s.once.Do(func() {
		s.kick = make(chan struct{}, 1)
		s.holder = newID()
	})
}

// Kick wakes the deliverer: a commit wrote notifications.
func (s *Service) Kick() {
	s.init()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Create stores a new Subscription (POST /{tenant}/Subscription) and answers it with its id and,
// this once, its webhook secret.
func (s *Service) Create(ctx context.Context, body *etree.Element) (*etree.Element, error) {
	sub, err := s.parse(body)
	if err != nil {
		return nil, err
	}
	sub.ID = newID()
	return s.put(ctx, sub, 0)
}

// Update changes a Subscription (PUT /{tenant}/Subscription/{id}), or creates it under that id;
// created tells which. Setting status active (or requested) again ends an error and resumes the
// delivery; off pauses it (nothing is written to the outbox while off).
func (s *Service) Update(ctx context.Context, id string, body *etree.Element) (res *etree.Element, created bool, err error) {
	if !fhir.ValidID(id) {
		return nil, false, fhir.Fail(fhir.CodeValue, "Subscription.id", "%s", fhir.IDRule)
	}
	if bid := fhir.ChildValue(body, "id"); bid != "" && bid != id {
		return nil, false, fhir.Fail(fhir.CodeInvalid, "Subscription.id", "the body's id differs from the URL's")
	}
	sub, err := s.parse(body)
	if err != nil {
		return nil, false, err
	}
	sub.ID = id
	r, err := s.Store.Current(ctx, subscriptionType, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && r.Deleted):
		res, err := s.put(ctx, sub, r.Version)
		return res, true, err
	case err != nil:
		return nil, false, err
	}
	old, err := decodeSubscription(r)
	if err != nil {
		return nil, false, err
	}
	sub.Secret, sub.Created = old.Secret, old.Created
	res, err = s.put(ctx, sub, old.version)
	return res, false, err
}

// audience is whose view of the tenant's data a subscription's notifications follow: that of
// who saved it last (access.From), so that they learn, at their endpoint, of no more than the
// API shows them. A subscription saved before user groups has none: it hears of the data of no
// group until saved again.
type audience struct {
	All    bool     `json:"all,omitempty"`    // red's own, or an admin: every user group's data
	Groups []string `json:"groups,omitempty"` // else the data of these user groups, and of none
}

// audienceOf is the view of who acts in ctx.
func audienceOf(ctx context.Context) audience {
	p, ok := access.From(ctx)
	if !ok || p.SeesAll() {
		return audience{All: true}
	}
	return audience{Groups: slices.Clone(p.Groups)}
}

// sees says whether the audience sees data of user group ("" for the whole tenant's).
func (a audience) sees(group string) bool {
	return a.All || group == "" || slices.Contains(a.Groups, group)
}

// only is what of fs the audience sees.
func (a audience) only(fs []focus) []focus {
	return slices.DeleteFunc(slices.Clone(fs), func(f focus) bool { return !a.sees(f.group) })
}

// key tells audiences apart.
func (a audience) key() string {
	if a.All {
		return "*"
	}
	g := slices.Clone(a.Groups)
	slices.Sort(g)
	return strings.Join(g, "\x00")
}

// put writes sub over version expect together with the next subscription generation, and
// renders it (with its secret when it is new).
func (s *Service) put(ctx context.Context, sub *subscription, expect int64) (*etree.Element, error) {
	now := s.now()
	sub.Audience = audienceOf(ctx)
	if sub.Secret == "" { // a new subscription (or one created again after its deletion)
		var key [32]byte
		_, _ = rand.Read(key[:])
		sub.Secret, sub.Created = "whsec_"+base64.StdEncoding.EncodeToString(key[:]), now
	}
	body, err := json.Marshal(sub)
	if err != nil {
		return nil, err
	}
	created := sub.Created.Equal(now)
	w := vault.Write{Type: subscriptionType, ID: sub.ID, Expect: expect, Updated: now, Body: body}
	if err := s.commitWithGeneration(ctx, w); err != nil {
		return nil, err
	}
	sub.version, sub.updated = expect+1, now
	res := s.render(sub, nil)
	if created {
		ch := res.SelectElement("channel")
		ext := etree.NewElement("extension")
		ext.CreateAttr("url", SecretExtension)
		fhir.SetValue(ext.CreateElement("valueString"), sub.Secret)
		ch.InsertChildAt(0, ext)
	}
	return res, nil
}

// commitWithGeneration commits w with the next version of the generation record, which tells
// every workstation's outbox to reload the subscriptions; another workstation's change at the
// same moment is waited out.
func (s *Service) commitWithGeneration(ctx context.Context, w vault.Write) error {
	for attempt := 0; ; attempt++ {
		h, err := s.Store.Heads(ctx, []vault.Ref{{Type: generationType, ID: generationID}})
		if err != nil {
			return err
		}
		gen := vault.Write{Type: generationType, ID: generationID, Expect: h[0].Version, Updated: w.Updated, Body: []byte("{}"), Forget: true}
		err = s.Store.Commit(ctx, []vault.Write{w, gen})
		if errors.Is(err, storage.ErrConflict) && attempt < 5 {
			if cur, cerr := s.Store.Heads(ctx, []vault.Ref{{Type: w.Type, ID: w.ID}}); cerr == nil && cur[0].Version == w.Expect {
				continue // only the generation moved on
			}
		}
		if errors.Is(err, storage.ErrConflict) {
			return fhir.Fail(fhir.CodeConflict, "", "another request changed this Subscription at the same moment; nothing was changed — try again")
		}
		s.mu.Lock()
		s.loaded = false
		s.mu.Unlock()
		return err
	}
}

// Read answers GET /{tenant}/Subscription/{id}: the Subscription with its status — error and the
// reason when its deliveries keep failing.
func (s *Service) Read(ctx context.Context, id string) (*etree.Element, error) {
	sub, err := s.get(ctx, id)
	if err != nil {
		return nil, missing(err)
	}
	led, err := s.ledger(ctx)
	if err != nil {
		return nil, err
	}
	return s.render(sub, led.cursor(sub)), nil
}

// List answers GET /{tenant}/Subscription: every Subscription, as a searchset.
func (s *Service) List(ctx context.Context) (fhir.SearchSet, error) {
	subs, err := s.load(ctx)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	led, err := s.ledger(ctx)
	if err != nil {
		return fhir.SearchSet{}, err
	}
	set := fhir.SearchSet{ID: newID(), Updated: s.now(), Total: len(subs)}
	for _, sub := range subs {
		set.Entries = append(set.Entries, fhir.Entry{FullURL: "/Subscription/" + sub.ID, Resource: s.render(sub, led.cursor(sub))})
	}
	return set, nil
}

// Delete removes a Subscription (DELETE /{tenant}/Subscription/{id}); what it had not delivered
// is dropped (the deliverer forgets its cursor).
func (s *Service) Delete(ctx context.Context, id string) error {
	r, err := s.Store.Current(ctx, subscriptionType, id)
	if err != nil {
		return missing(err)
	}
	if r.Deleted {
		return fhir.Fail(fhir.CodeDeleted, "", "this Subscription was deleted already")
	}
	return s.commitWithGeneration(ctx, vault.Write{Type: subscriptionType, ID: id, Expect: r.Version, Updated: s.now(), Deleted: true})
}

func missing(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fhir.Fail(fhir.CodeNotFound, "", "no Subscription with this id")
	}
	return err
}

// get reads one subscription: storage.ErrNotFound for none, fhir.CodeDeleted for a deleted one.
func (s *Service) get(ctx context.Context, id string) (*subscription, error) {
	r, err := s.Store.Current(ctx, subscriptionType, id)
	if err != nil {
		return nil, err
	}
	if r.Deleted {
		return nil, fhir.Fail(fhir.CodeDeleted, "", "this Subscription was deleted")
	}
	return decodeSubscription(r)
}

func decodeSubscription(r vault.Resource) (*subscription, error) {
	sub := &subscription{}
	if err := json.Unmarshal(r.Body, sub); err != nil {
		return nil, fmt.Errorf("notify: a subscription's record is unreadable: %w", err)
	}
	sub.version, sub.updated = r.Version, r.Updated
	if err := sub.compile(); err != nil {
		return nil, fmt.Errorf("notify: a stored subscription's criteria no longer parse: %w", err)
	}
	return sub, nil
}

// key names the subscription in the outbox and the ledger: its id and when it was created, so
// that one created again under the id of a deleted one starts afresh.
func (sub *subscription) key() string {
	return sub.ID + "@" + strconv.FormatInt(sub.Created.UnixMicro(), 10)
}

// subscriptionOf is the id in a subscription's key.
func subscriptionOf(key string) string {
	id, _, _ := strings.Cut(key, "@")
	return id
}

// compile reads the criteria: a topic or a search.
func (sub *subscription) compile() error {
	if t, ok := strings.CutPrefix(sub.Criteria, TopicPrefix); ok {
		if !slices.Contains(topics, t) {
			return fhir.Fail(fhir.CodeNotSupported, "Subscription.criteria", "unknown event %q; known: %s", t, TopicPrefix+strings.Join(topics, ", "+TopicPrefix))
		}
		sub.topic = t
		return nil
	}
	c, err := records.ParseCriteria(sub.Criteria, "Subscription.criteria")
	if err != nil {
		return err
	}
	sub.crit = &c
	return nil
}

// load reads every subscription.
func (s *Service) load(ctx context.Context) ([]*subscription, error) {
	out, err := findAll(ctx, s.Store, vault.Query{Type: subscriptionType}, decodeSubscription)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *subscription) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// current returns the subscriptions, loaded again when any changed (on any workstation: the
// generation record's version tells).
func (s *Service) current(ctx context.Context) ([]*subscription, error) {
	return s.currentAt(ctx, -1)
}

// currentAt is current when the generation record's version is gen (-1: read it now).
func (s *Service) currentAt(ctx context.Context, gen int64) ([]*subscription, error) {
	if gen < 0 {
		h, err := s.Store.Heads(ctx, []vault.Ref{{Type: generationType, ID: generationID}})
		if err != nil {
			return nil, err
		}
		gen = h[0].Version
	}
	s.mu.Lock()
	if s.loaded && s.gen == gen {
		subs := s.subs
		s.mu.Unlock()
		return subs, nil
	}
	s.mu.Unlock()
	subs, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.subs, s.gen, s.loaded = subs, gen, true
	s.mu.Unlock()
	return subs, nil
}

// parse reads a posted Subscription; every problem is reported at once.
func (s *Service) parse(body *etree.Element) (*subscription, error) {
	if body.Tag != "Subscription" {
		return nil, fhir.Fail(fhir.CodeStructure, body.Tag, "expected a Subscription, got %s", body.Tag)
	}
	var issues fhir.Issues
	bad := func(code fhir.IssueCode, at, format string, args ...any) {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: at, Diagnostics: fmt.Sprintf(format, args...)})
	}
	sub := &subscription{Reason: fhir.ChildValue(body, "reason"), Criteria: fhir.ChildValue(body, "criteria")}
	switch st := fhir.ChildValue(body, "status"); st {
	case statusRequested, statusActive, "":
		sub.Status = statusActive
	case statusOff:
		sub.Status = statusOff
	case statusError:
		bad(fhir.CodeValue, "Subscription.status", "error is set by red when deliveries keep failing; send active to resume or off to pause")
	default:
		bad(fhir.CodeValue, "Subscription.status", "status is requested, active or off")
	}
	if sub.Criteria == "" {
		bad(fhir.CodeRequired, "Subscription.criteria", "criteria name a search (Type?parameters) or an event (%s…)", TopicPrefix)
	} else if err := sub.compile(); err != nil {
		is, _ := fhir.Explain(err)
		issues = append(issues, is...)
	}
	ch := fhir.Child(body, "channel")
	if t := fhir.ChildValue(ch, "type"); t != "rest-hook" {
		bad(fhir.CodeNotSupported, "Subscription.channel.type", "red delivers by rest-hook only")
	}
	sub.Endpoint = fhir.ChildValue(ch, "endpoint")
	if err := checkEndpoint(sub.Endpoint, s.Hosts); err != nil {
		is, _ := fhir.Explain(err)
		issues = append(issues, is...)
	}
	sub.Payload = IDOnly
	if p := fhir.Child(ch, "payload"); p != nil {
		if mt := fhir.Value(p); mt != "" && mt != "application/fhir+xml" {
			bad(fhir.CodeNotSupported, "Subscription.channel.payload", "red sends application/fhir+xml")
		}
		for _, ext := range p.SelectElements("extension") {
			if ext.SelectAttrValue("url", "") != payloadContentURL {
				continue
			}
			switch c := fhir.ChildValue(ext, "valueCode"); c {
			case IDOnly, FullResource:
				sub.Payload = c
			default:
				bad(fhir.CodeValue, "Subscription.channel.payload.extension", "the payload content is id-only or full-resource")
			}
		}
	}
	if len(issues) > 0 {
		return nil, fhir.Reject(issues)
	}
	return sub, nil
}

// checkEndpoint allows loopback URLs (127.0.0.0/8, ::1, localhost) over http or https, and the
// host names the admin allowed over https only; anything else is refused.
func checkEndpoint(raw string, hosts []string) error {
	const at = "Subscription.channel.endpoint"
	if raw == "" {
		return fhir.Fail(fhir.CodeRequired, at, "a rest-hook subscription needs the URL to send to")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fhir.Fail(fhir.CodeValue, at, "the endpoint is an http or https URL without user information, e.g. http://127.0.0.1:8080/hook")
	}
	if loopbackHost(u.Hostname()) {
		return nil
	}
	if !slices.Contains(hosts, strings.ToLower(u.Hostname())) {
		return fhir.Fail(fhir.CodeForbidden, at, "red sends notifications to this machine only (127.0.0.1, ::1, localhost); other hosts need the admin's permission (red serve --notify-allow-host NAME)")
	}
	if u.Scheme != "https" {
		return fhir.Fail(fhir.CodeForbidden, at, "notifications leave this machine over https only")
	}
	return nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// render is sub as a FHIR Subscription, with its delivery status from cur.
func (s *Service) render(sub *subscription, cur *cursor) *etree.Element {
	res := etree.NewElement("Subscription")
	res.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(res.CreateElement("id"), sub.ID)
	fhir.SetMeta(res, strconv.FormatInt(sub.version, 10), fhir.Instant(sub.updated))
	status, errText := sub.Status, ""
	if cur != nil && cur.failed(sub) {
		status, errText = statusError, cur.Error
	}
	fhir.SetValue(res.CreateElement("status"), status)
	if sub.Reason != "" {
		fhir.SetValue(res.CreateElement("reason"), sub.Reason)
	}
	fhir.SetValue(res.CreateElement("criteria"), sub.Criteria)
	if errText != "" {
		fhir.SetValue(res.CreateElement("error"), errText)
	}
	ch := res.CreateElement("channel")
	fhir.SetValue(ch.CreateElement("type"), "rest-hook")
	fhir.SetValue(ch.CreateElement("endpoint"), sub.Endpoint)
	p := ch.CreateElement("payload")
	fhir.SetValue(p, "application/fhir+xml")
	ext := p.CreateElement("extension")
	ext.CreateAttr("url", payloadContentURL)
	fhir.SetValue(ext.CreateElement("valueCode"), sub.Payload)
	return res
}
