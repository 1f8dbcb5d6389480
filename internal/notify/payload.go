package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
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
// per changed resource — with the resource itself for full-resource subscriptions.
func (s *Service) payload(ctx context.Context, sub *subscription, n notification) ([]byte, error) {
	b := etree.NewElement("Bundle")
	b.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(b.CreateElement("id"), n.ID)
	fhir.SetValue(b.CreateElement("meta").CreateElement("profile"), notificationProfile)
	fhir.SetValue(b.CreateElement("type"), "history")
	fhir.SetValue(b.CreateElement("timestamp"), fhir.Instant(n.At))

	status := b.CreateElement("entry")
	fhir.SetValue(status.CreateElement("fullUrl"), "urn:uuid:"+uuidOf(n.ID))
	params := status.CreateElement("resource").CreateElement("Parameters")
	fhir.SetValue(params.CreateElement("id"), uuidOf(n.ID))
	param := func(parent *etree.Element, tag, name string) *etree.Element {
		p := parent.CreateElement(tag)
		fhir.SetValue(p.CreateElement("name"), name)
		return p
	}
	seq := strconv.FormatInt(n.Seq, 10)
	fhir.SetValue(param(params, "parameter", "subscription").CreateElement("valueReference").CreateElement("reference"), "Subscription/"+sub.ID)
	fhir.SetValue(param(params, "parameter", "topic").CreateElement("valueCanonical"), TopicPrefix+n.Event)
	fhir.SetValue(param(params, "parameter", "status").CreateElement("valueCode"), statusActive)
	fhir.SetValue(param(params, "parameter", "type").CreateElement("valueCode"), "event-notification")
	fhir.SetValue(param(params, "parameter", "events-since-subscription-start").CreateElement("valueString"), seq)
	ev := param(params, "parameter", "notification-event")
	fhir.SetValue(param(ev, "part", "event-number").CreateElement("valueString"), seq)
	fhir.SetValue(param(ev, "part", "timestamp").CreateElement("valueInstant"), fhir.Instant(n.At))
	for _, f := range n.Focus {
		fhir.SetValue(param(ev, "part", "focus").CreateElement("valueReference").CreateElement("reference"), f.ref())
	}
	if n.Patient != "" {
		ref := param(ev, "part", "additional-context").CreateElement("valueReference")
		pref := n.Patient
		if n.PatientAt > 0 {
			pref += "/_history/" + strconv.FormatInt(n.PatientAt, 10)
		}
		fhir.SetValue(ref.CreateElement("reference"), pref)
		if idn, err := s.patientIdentifier(ctx, n.Patient, n.PatientAt); err != nil {
			return nil, err
		} else if idn != nil {
			ref.AddChild(idn)
		}
	}

	content := n.Content
	for _, f := range n.Focus {
		e := b.CreateElement("entry")
		fhir.SetValue(e.CreateElement("fullUrl"), f.Type+"/"+f.ID)
		if sub.Payload == FullResource && !f.Deleted {
			res, err := s.resource(ctx, f, &content)
			if err != nil {
				return nil, err
			}
			if res != nil {
				res.CreateAttr("xmlns", fhir.Namespace)
				e.CreateElement("resource").AddChild(res)
			}
		}
		req := e.CreateElement("request")
		method, code := "PUT", "200"
		switch {
		case f.Deleted:
			method, code = "DELETE", "204"
		case f.Version == 1:
			method, code = "POST", "201"
		}
		fhir.SetValue(req.CreateElement("method"), method)
		fhir.SetValue(req.CreateElement("url"), f.Type+"/"+f.ID)
		resp := e.CreateElement("response")
		fhir.SetValue(resp.CreateElement("status"), code)
		if f.Version > 0 {
			fhir.SetValue(resp.CreateElement("etag"), `W/"`+strconv.FormatInt(f.Version, 10)+`"`)
		}
	}
	return fhir.Document(b), nil
}

// ref is the focus as a (version-specific) reference.
func (f focus) ref() string {
	if f.Version > 0 {
		return f.Type + "/" + f.ID + "/_history/" + strconv.FormatInt(f.Version, 10)
	}
	return f.Type + "/" + f.ID
}

// resource is the focus's content: the stored version, or the next of the notification's own.
func (s *Service) resource(ctx context.Context, f focus, content *[][]byte) (*etree.Element, error) {
	var body []byte
	if f.Version > 0 {
		r, err := s.Store.Version(ctx, f.Type, f.ID, f.Version)
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

// patientIdentifier is the identifier of the patient's version (the KVNR when it has one, else its
// first), nil when there is none to give.
func (s *Service) patientIdentifier(ctx context.Context, patient string, version int64) (*etree.Element, error) {
	if version == 0 {
		return nil, nil
	}
	key := patient + "/_history/" + strconv.FormatInt(version, 10)
	s.mu.Lock()
	idn, ok := s.identifiers[key]
	s.mu.Unlock()
	if ok {
		if idn == nil {
			return nil, nil
		}
		return idn.Copy(), nil
	}
	idn, err := s.readIdentifier(ctx, patient, version)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.identifiers) >= 1024 || s.identifiers == nil { // a version's identifier never changes; the cache only bounds reads
		s.identifiers = map[string]*etree.Element{}
	}
	s.identifiers[key] = idn
	s.mu.Unlock()
	if idn == nil {
		return nil, nil
	}
	return idn.Copy(), nil
}

// readIdentifier reads what patientIdentifier gives.
func (s *Service) readIdentifier(ctx context.Context, patient string, version int64) (*etree.Element, error) {
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
		return nil, nil
	}
	out := etree.NewElement("identifier")
	for _, tag := range []string{"system", "value"} {
		if v := fhir.ChildValue(pick, tag); v != "" {
			fhir.SetValue(out.CreateElement(tag), v)
		}
	}
	return out, nil
}

// uuidOf formats a 32-hex-digit id as a UUID.
func uuidOf(id string) string {
	if len(id) != 32 {
		return id
	}
	return id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:]
}
