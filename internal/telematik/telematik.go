// Package telematik carries out RED's TI actions (/{tenant}/TI?action=…, Bundle?action=$signpdf):
// card and PIN operations and signatures through the Konnektor, ePA status and upload, reading
// the eGK and fetching its e-prescriptions from the E-Rezept-Fachdienst — always through the TI
// clients over HTTP, each call bounded in time. Besides the card an action needs, the logged-in
// user needs the role RED names for it (package access): e-prescriptions are created, queued
// and signed by a physician, the pharmacy's actions are a pharmacist's.
package telematik

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/epa"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// DefaultTimeout bounds one TI call.
const DefaultTimeout = 30 * time.Second

// Patients tells whether a patient exists (for $openpatient).
type Patients interface {
	Read(ctx context.Context, typ, id string) (*etree.Element, error)
}

// Records stores posted data (records.Service): an e-prescription's persons are stored so, and
// the physician who signs a prescription queued without one is found among them.
type Records interface {
	PostBundle(ctx context.Context, b *etree.Element) (*etree.Element, error)
	Search(ctx context.Context, typ string, q url.Values) (fhir.SearchSet, error)
	// GroupOf is the user group of a stored resource ("" for the tenant's): a prescription
	// belongs to its patient's.
	GroupOf(ctx context.Context, typ, id string) (string, error)
}

// Service performs the actions against one Konnektor, one Fachdienst and one ePA.
type Service struct {
	Konnektor  *konnektor.Client
	Fachdienst *fachdienst.Client
	EPA        *epa.Client
	Patients   Patients
	Timeout    time.Duration // per TI call; DefaultTimeout when 0
	SignedPDFs *SignedPDFs   // where $signpdf may save signatures (filepath); nil: nowhere
	// Prescriptions keeps the tenant's e-prescriptions (the vault's barrier); nil: the
	// e-prescription actions are not available.
	Prescriptions erp.Store
	Records       Records          // where a prescription's persons are stored; nil: not stored
	Now           func() time.Time // nil: time.Now
	// Announce, when set, is told of events red stores nothing for (package notify's Announce):
	// the messages Received fetched, so that subscribers learn of them.
	Announce func(ctx context.Context, event string, resources []*etree.Element) error
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Answer is what an action returns: an HTTP status and an XML body in RED's shape.
type Answer struct {
	Status int
	Body   *etree.Element
}

type action struct {
	method string // GET or POST
	run    func(s *Service, ctx context.Context, q url.Values, body *etree.Element) (Answer, error)
	// roles are those of which the logged-in user needs one (RED's role rules, besides the
	// card's); none: every user.
	roles []access.Role
}

// RED's role rules: creating, queueing and signing e-prescriptions is a physician's, the
// pharmacy's actions are a pharmacist's, and a document is signed (an HBA's QES) by either.
var (
	physician             = []access.Role{access.Physician}
	pharmacist            = []access.Role{access.Pharmacist}
	physicianOrPharmacist = []access.Role{access.Physician, access.Pharmacist}
)

// actions are RED's /TI actions; names not in RED's documentation follow its style.
var actions = map[string]action{
	"$getcards":      {"GET", (*Service).getCards, nil},
	"$telematikids":  {"GET", (*Service).telematikIDs, nil},
	"$getpinstatus":  {"GET", (*Service).getPinStatus, nil},
	"$verifypin":     {"GET", (*Service).verifyPin, nil},
	"$changepin":     {"GET", (*Service).changePin, nil},
	"$unblockpin":    {"GET", (*Service).unblockPin, nil},
	"$getepastatus":  {"GET", (*Service).getEpaStatus, nil},
	"$epaupload":     {"POST", (*Service).epaUpload, nil},
	"$egkfetch":      {"GET", (*Service).egkFetch, pharmacist},
	"$openpatient":   {"GET", (*Service).openPatient, nil},
	"$createerptask": {"POST", (*Service).createERPTask, physician},
	"$processerp":    {"GET", (*Service).processERP, physician},
}

// Actions lists the /TI actions, sorted.
func Actions() []string {
	out := make([]string, 0, len(actions))
	for n := range actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Method is the HTTP method action is called with ("" for an unknown action).
func Method(action string) string { return actions[action].method }

// Do runs a /TI action; an unknown one is a 400 that lists the known ones. The caller has
// checked the method (Method).
func (s *Service) Do(ctx context.Context, name string, q url.Values, body *etree.Element) (Answer, error) {
	a, ok := actions[name]
	if !ok {
		if name == "" {
			return Answer{}, fhir.Fail(fhir.CodeRequired, "action", "name an action: %s", strings.Join(Actions(), ", "))
		}
		return Answer{}, fhir.Fail(fhir.CodeNotSupported, "action", "unknown action %q; known: %s", name, strings.Join(Actions(), ", "))
	}
	if err := require(ctx, name, a.roles); err != nil {
		return Answer{}, err
	}
	return a.run(s, ctx, q, body)
}

// require applies a role rule: the logged-in user needs one of roles (none: every user may).
func require(ctx context.Context, what string, roles []access.Role) error {
	if len(roles) == 0 {
		return nil
	}
	return access.Require(ctx, what, roles...)
}

// call bounds one TI call in time and turns transport failures into errors naming the service.
func (s *Service) call(ctx context.Context, service string, f func(ctx context.Context) error) error {
	t := s.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	err := f(ctx)
	if err == nil {
		return nil
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fhir.Fail(fhir.CodeTimeout, "", "the %s did not answer within %s", service, t)
	case isUnreachable(err):
		return fhir.Fail(fhir.CodeTransient, "", "the %s cannot be reached", service)
	}
	var fault *konnektor.Fault
	if errors.As(err, &fault) {
		return fhir.Wrap(err, fhir.CodeProcessing, "the %s refused: %s (gematik code %d)", service, fault.Error(), fault.Code())
	}
	return fhir.Wrap(err, fhir.CodeProcessing, "the %s refused: %s", service, err.Error())
}

func isUnreachable(err error) bool {
	var oe *net.OpError
	var ue *url.Error
	return errors.As(err, &oe) || (errors.As(err, &ue) && !ue.Timeout())
}

// cardsOf lists the Konnektor's cards of type typ ("" for all), optionally only those in the
// terminal with IP address ip (RED's cardreader parameter).
func (s *Service) cardsOf(ctx context.Context, ip string, typ konnektor.CardType) ([]konnektor.Card, error) {
	filter := konnektor.Filter{CardType: typ}
	if ip != "" {
		var terms []konnektor.CardTerminal
		if err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
			terms, err = s.Konnektor.GetCardTerminals(ctx, false)
			return err
		}); err != nil {
			return nil, err
		}
		for _, t := range terms {
			if t.IPv4Address == ip || t.IPv6Address == ip {
				filter.CtID = t.CtID
			}
		}
		if filter.CtID == "" {
			return nil, fhir.Fail(fhir.CodeNotFound, "cardreader", "no card terminal has this IP address")
		}
	}
	var cards []konnektor.Card
	err := s.call(ctx, "Konnektor", func(ctx context.Context) (err error) {
		cards, err = s.Konnektor.GetCards(ctx, filter)
		return err
	})
	return cards, err
}

// card finds one card by handle or by holder name (RED's cardname).
func (s *Service) card(ctx context.Context, q url.Values, want ...konnektor.CardType) (konnektor.Card, error) {
	cards, err := s.cardsOf(ctx, q.Get("cardreader"), "")
	if err != nil {
		return konnektor.Card{}, err
	}
	handle, name := q.Get("card"), q.Get("cardname")
	if handle == "" {
		handle = q.Get("cardhandle")
	}
	for _, c := range cards {
		if (handle != "" && c.Handle == handle) || (name != "" && strings.EqualFold(c.HolderName, name)) {
			if len(want) > 0 && !cardIs(c, want...) {
				return c, fhir.Fail(fhir.CodeForbidden, "card", "this action needs a card of type %s, not %s", joinTypes(want), c.Type)
			}
			return c, nil
		}
	}
	if handle == "" && name == "" {
		return konnektor.Card{}, fhir.Fail(fhir.CodeRequired, "card", "name the card: card (its CardHandle from $getcards) or cardname")
	}
	return konnektor.Card{}, fhir.Fail(fhir.CodeNotFound, "card", "no such card is inserted")
}

func cardIs(c konnektor.Card, types ...konnektor.CardType) bool {
	for _, t := range types {
		if c.Type == t || (t == konnektor.CardHBA && (c.Type == konnektor.CardHBAQSig || c.Type == konnektor.CardHBAx)) {
			return true
		}
	}
	return false
}

func joinTypes(ts []konnektor.CardType) string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return strings.Join(s, " or ")
}

// certificate reads a card's certificate (C.AUT unless ref says otherwise).
func (s *Service) certificate(ctx context.Context, handle, ref string) (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := s.call(ctx, "Konnektor", func(ctx context.Context) error {
		certs, err := s.Konnektor.ReadCardCertificate(ctx, handle, ref)
		if err != nil {
			return err
		}
		if len(certs) == 0 {
			return errors.New("no certificate")
		}
		cert = certs[0].Certificate
		return nil
	})
	return cert, err
}

// professionOf is the profession OIDs and Telematik-ID in a card certificate's admission.
func professionOf(cert *x509.Certificate) admission.Admission {
	a, _ := admission.Of(cert)
	return a
}

// connectorResponse starts RED's <ConnectorResponse> answer.
func connectorResponse() *etree.Element { return etree.NewElement("ConnectorResponse") }

func text(parent *etree.Element, tag, value string) *etree.Element {
	e := parent.CreateElement(tag)
	e.SetText(value)
	return e
}
