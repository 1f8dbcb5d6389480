package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/storage"
)

const notificationProfile = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4"

// Sign is the Standard Webhooks signature of a message: "v1," and the base64 HMAC-SHA256, keyed
// with the secret's bytes (after whsec_), of "id.timestamp.body".
func Sign(secret, id, timestamp string, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", errors.New("notify: the secret is not base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// payload is n as the notification Bundle its subscription receives (the subscriptions
// backport's shape for R4): a history Bundle whose first entry, a Parameters
// (SubscriptionStatus), names the subscription, the event (topic), its sequence number
// (event-number and events-since-subscription-start), the time in UTC, what changed (focus,
// version-specific) and the patient it belongs to with the patient's identifier; then one entry
// per changed resource — with the resource itself for full-resource subscriptions. It is written
// directly, indented as red's answers are: what names the subscription first, then what all
// subscriptions with the same payload content and audience are sent of the event, written once
// (tail). It holds what the subscription's audience sees, and of that, in $events, what who asks
// sees.
func (s *Service) payload(ctx context.Context, sub *subscription, n notification) ([]byte, error) {
	tail, err := s.tail(ctx, n, sub.Payload, sub.Audience)
	if err != nil {
		return nil, err
	}
	w := &xmlWriter{}
	w.buf.Grow(512 + len(tail))
	w.buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	w.open("Bundle", "xmlns", fhir.Namespace)
	w.value("id", n.ID)
	w.open("meta")
	w.value("profile", notificationProfile)
	w.close("meta")
	w.value("type", "history")
	w.value("timestamp", fhir.Instant(n.At))

	w.open("entry")
	w.value("fullUrl", "urn:uuid:"+uuidOf(n.ID))
	w.open("resource")
	w.open("Parameters")
	w.value("id", uuidOf(n.ID))
	seq := strconv.FormatInt(n.Seq, 10)
	w.refParam("parameter", "subscription", "Subscription/"+sub.ID)
	w.param("parameter", "topic", "valueCanonical", TopicPrefix+n.Event)
	w.param("parameter", "status", "valueCode", statusActive)
	w.param("parameter", "type", "valueCode", "event-notification")
	w.param("parameter", "events-since-subscription-start", "valueString", seq)
	w.open("parameter")
	w.value("name", "notification-event")
	w.param("part", "event-number", "valueString", seq)
	w.buf.Write(tail)
	return w.buf.Bytes(), nil
}

// tailDepth is the depth of the elements payload's tail begins with (Bundle, entry, resource,
// Parameters, parameter).
const tailDepth = 5

// tail is the rest of the payloads of n's event for subscriptions with the payload content
// kind and the audience aud, after its event number: written once for all of them, while they
// are sent side by side (the others wait for it). What a tail holds depends on whose view it
// follows, so it is shared only by the same audience and the same view of who asks (the
// deliverer's, or in $events the caller's); one that failed is written anew by the next.
func (s *Service) tail(ctx context.Context, n notification, kind string, aud audience) ([]byte, error) {
	key := n.Event + "/" + n.Entry + "/" + kind + "\x01" + aud.key() + "\x01" + audienceOf(ctx).key()
	s.mu.Lock()
	t, ok := s.tails[key]
	if !ok {
		if len(s.tails) >= 256 || s.tails == nil { // the cache only saves work while a round sends
			s.tails = map[string]*tail{}
		}
		t = &tail{}
		s.tails[key] = t
	}
	s.mu.Unlock()
	t.once.Do(func() { t.body, t.err = s.writeTail(ctx, n, kind, aud) })
	if t.err != nil {
		s.mu.Lock()
		if s.tails[key] == t {
			delete(s.tails, key)
		}
		s.mu.Unlock()
	}
	return t.body, t.err
}

// tail is a part of payloads written once.
type tail struct {
	once sync.Once
	body []byte
	err  error
}

// writeTail writes what tail gives.
func (s *Service) writeTail(ctx context.Context, n notification, kind string, aud audience) ([]byte, error) {
	w := &xmlWriter{depth: tailDepth}
	w.param("part", "timestamp", "valueInstant", fhir.Instant(n.At))
	for _, f := range n.Focus {
		w.refParam("part", "focus", f.ref())
	}
	if n.Patient != "" {
		pref := n.Patient
		if n.PatientAt > 0 {
			pref += "/_history/" + strconv.FormatInt(n.PatientAt, 10)
		}
		idn, err := s.patientIdentifier(ctx, n.Patient, n.PatientAt)
		if err != nil {
			return nil, err
		}
		if idn != nil && (!aud.sees(idn.group) || !audienceOf(ctx).sees(idn.group) || idn.system == "" && idn.value == "") {
			idn = nil
		}
		w.open("part")
		w.value("name", "additional-context")
		w.open("valueReference")
		w.value("reference", pref)
		if idn != nil {
			w.open("identifier")
			if idn.system != "" {
				w.value("system", idn.system)
			}
			if idn.value != "" {
				w.value("value", idn.value)
			}
			w.close("identifier")
		}
		w.close("valueReference")
		w.close("part")
	}
	w.close("parameter")
	w.close("Parameters")
	w.close("resource")
	w.close("entry")

	content := n.Content
	for _, f := range n.Focus {
		w.open("entry")
		w.value("fullUrl", f.Type+"/"+f.ID)
		if kind == FullResource && !f.Deleted {
			res, err := s.resource(ctx, aud, f, &content)
			if err != nil {
				return nil, err
			}
			if res != nil {
				res.CreateAttr("xmlns", fhir.Namespace)
				w.open("resource")
				w.element(res)
				w.close("resource")
			}
		}
		method, code := "PUT", "200"
		switch {
		case f.Deleted:
			method, code = "DELETE", "204"
		case f.Version == 1:
			method, code = "POST", "201"
		}
		w.open("request")
		w.value("method", method)
		w.value("url", f.Type+"/"+f.ID)
		w.close("request")
		w.open("response")
		w.value("status", code)
		if f.Version > 0 {
			w.value("etag", `W/"`+strconv.FormatInt(f.Version, 10)+`"`)
		}
		w.close("response")
		w.close("entry")
	}
	w.close("Bundle")
	w.buf.WriteByte('\n')
	return w.buf.Bytes(), nil
}

// xmlWriter writes an indented XML document of FHIR elements (values in value attributes).
type xmlWriter struct {
	buf   bytes.Buffer
	depth int
}

func (w *xmlWriter) indent() {
	w.buf.WriteByte('\n')
	for range w.depth {
		w.buf.WriteString("  ")
	}
}

// open starts element tag with the attributes given as name, value pairs.
func (w *xmlWriter) open(tag string, attrs ...string) {
	w.indent()
	w.buf.WriteByte('<')
	w.buf.WriteString(tag)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.attr(attrs[i], attrs[i+1])
	}
	w.buf.WriteByte('>')
	w.depth++
}

func (w *xmlWriter) close(tag string) {
	w.depth--
	w.indent()
	w.buf.WriteString("</")
	w.buf.WriteString(tag)
	w.buf.WriteByte('>')
}

// param writes a parameter (or part) named name with the value v as valueTag.
func (w *xmlWriter) param(tag, name, valueTag, v string) {
	w.open(tag)
	w.value("name", name)
	w.value(valueTag, v)
	w.close(tag)
}

// refParam writes a parameter (or part) named name with the reference ref.
func (w *xmlWriter) refParam(tag, name, ref string) {
	w.open(tag)
	w.value("name", name)
	w.open("valueReference")
	w.value("reference", ref)
	w.close("valueReference")
	w.close(tag)
}

// value writes <tag value="v"/>.
func (w *xmlWriter) value(tag, v string) {
	w.indent()
	w.buf.WriteByte('<')
	w.buf.WriteString(tag)
	w.attr("value", v)
	w.buf.WriteString("/>")
}

func (w *xmlWriter) attr(name, v string) {
	w.buf.WriteByte(' ')
	w.buf.WriteString(name)
	w.buf.WriteString(`="`)
	_ = xml.EscapeText(&w.buf, []byte(v))
	w.buf.WriteByte('"')
}

// element writes el as etree writes it, on a line of its own.
func (w *xmlWriter) element(el *etree.Element) {
	w.indent()
	el.WriteTo(&w.buf, &etree.WriteSettings{})
}

// ref is the focus as a (version-specific) reference.
func (f focus) ref() string {
	if f.Version > 0 {
		return f.Type + "/" + f.ID + "/_history/" + strconv.FormatInt(f.Version, 10)
	}
	return f.Type + "/" + f.ID
}

// resource is the focus's content: the stored version, or the next of the notification's own;
// nil when neither the audience nor who asks (ctx: $events) may see it.
func (s *Service) resource(ctx context.Context, aud audience, f focus, content *[][]byte) (*etree.Element, error) {
	var body []byte
	if f.Version > 0 {
		r, err := s.Store.Version(ctx, f.Type, f.ID, f.Version)
		if errors.Is(err, storage.ErrNotFound) || err == nil && !aud.sees(r.Group) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		body = r.Body
	} else if len(*content) > 0 {
		body, *content = (*content)[0], (*content)[1:]
	}
	if body == nil {
		return nil, nil
	}
	return fhir.Parse(body, fhir.DefaultLimits)
}

// identifier is a patient's identifier as a notification names it, and the user group of the
// patient's version.
type identifier struct{ system, value, group string }

// patientIdentifier is the identifier of the patient's version (the KVNR when it has one, else its
// first), nil when there is none to give.
func (s *Service) patientIdentifier(ctx context.Context, patient string, version int64) (*identifier, error) {
	if version == 0 {
		return nil, nil
	}
	key := patient + "/_history/" + strconv.FormatInt(version, 10)
	s.mu.Lock()
	idn, ok := s.identifiers[key]
	s.mu.Unlock()
	if ok {
		return idn, nil
	}
	idn, err := s.readIdentifier(ctx, patient, version)
	if errors.Is(err, storage.ErrNotFound) { // who asks ($events) may not see it: not for the cache
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.identifiers) >= 1024 || s.identifiers == nil { // a version's identifier never changes; the cache only bounds reads
		s.identifiers = map[string]*identifier{}
	}
	s.identifiers[key] = idn
	s.mu.Unlock()
	return idn, nil
}

// readIdentifier reads what patientIdentifier gives.
func (s *Service) readIdentifier(ctx context.Context, patient string, version int64) (*identifier, error) {
	r, err := s.Store.Version(ctx, "Patient", strings.TrimPrefix(patient, "Patient/"), version)
	if err != nil || r.Deleted {
		return nil, err
	}
	el, err := fhir.Parse(r.Body, fhir.DefaultLimits)
	if err != nil {
		return nil, err
	}
	var pick *etree.Element
	for _, idn := range el.SelectElements("identifier") {
		if pick == nil || strings.Contains(fhir.ChildValue(idn, "system"), "kvid") {
			pick = idn
		}
	}
	if pick == nil {
		return &identifier{group: r.Group}, nil
	}
	return &identifier{system: fhir.ChildValue(pick, "system"), value: fhir.ChildValue(pick, "value"), group: r.Group}, nil
}

// uuidOf formats a 32-hex-digit id as a UUID.
func uuidOf(id string) string {
	if len(id) != 32 {
		return id
	}
	return id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}
