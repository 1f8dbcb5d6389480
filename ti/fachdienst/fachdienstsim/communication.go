package fachdienstsim

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/fachdienst"
)

// Communication profiles (GEM_ERP_PR_Communication_*), without version.
const (
	commDispReq        = "GEM_ERP_PR_Communication_DispReq"        // insured person → pharmacy
	commReply          = "GEM_ERP_PR_Communication_Reply"          // pharmacy → insured person
	commRepresentative = "GEM_ERP_PR_Communication_Representative" // insured person → representative
	commDiGA           = "GEM_ERP_PR_Communication_DiGA"           // insured person → payor
)

// communicationKind is the profile name of a Communication, without base URL and version.
func communicationKind(c *etree.Element) string {
	p := fhir.ChildValue(c, "meta", "profile")
	p = p[strings.LastIndex(p, "/")+1:]
	if i := strings.Index(p, "|"); i >= 0 {
		p = p[:i]
	}
	return p
}

// postCommunication is POST /Communication.
func (s *Simulator) postCommunication(w http.ResponseWriter, r *http.Request, who fachdienst.Identity) error {
	if !who.Insured() && !who.Pharmacy() && !who.Payor() {
		return forbiddenRole(who)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if body == nil || body.Tag != "Communication" {
		return fail(http.StatusBadRequest, "Expected a Communication")
	}
	kind := communicationKind(body)
	switch kind {
	case commDispReq, commRepresentative, commDiGA:
		if !who.Insured() {
			return forbiddenRole(who)
		}
	case commReply:
		if who.Insured() {
			return forbiddenRole(who)
		}
	default:
		return failDiag(http.StatusBadRequest, "Unsupported Communication profile", kind)
	}
	if err := checkCommunication(kind, body); err != nil {
		return err
	}
	basedOn := fhir.ChildValue(body, "basedOn", "reference")
	taskID := fachdienst.TaskIDOf(basedOn)
	recipientEl := body.SelectElement("recipient")
	recipient := fhir.ChildValue(recipientEl, "identifier", "value")
	if recipient == "" {
		return fail(http.StatusBadRequest, "Communication.recipient is missing")
	}
	if recipient == who.ID {
		return fail(http.StatusBadRequest, "Sender and recipient must differ")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if taskID == "" {
		return fail(http.StatusBadRequest, "Communication.basedOn does not reference a Task")
	}
	t, err := s.lookup(taskID)
	if err != nil {
		return err
	}
	switch kind {
	case commDispReq, commRepresentative, commDiGA:
		if t.Status != string(fachdienst.StatusReady) {
			return fail(http.StatusBadRequest, "Task has invalid status.")
		}
		ac := ""
		if u, err := url.Parse(basedOn); err == nil {
			ac = u.Query().Get("ac")
		}
		if who.ID != t.KVNR || ac != "" {
			if !equalSecret(ac, t.AccessCode) {
				return &fdError{status: http.StatusForbidden, text: msgAccessCode, vau: vauBruteForce}
			}
		}
	case commReply:
		if t.Status == string(fachdienst.StatusDraft) || t.Status == string(fachdienst.StatusCancelled) {
			return fail(http.StatusBadRequest, "Task has invalid status.")
		}
	}
	id, err := s.uuid()
	if err != nil {
		return err
	}
	now := s.now()
	c := body.Copy()
	c.RemoveAttr("xmlns")
	setID(c, id)
	for _, tag := range []string{"sent", "received", "sender"} {
		for _, old := range c.SelectElements(tag) {
			c.RemoveChild(old)
		}
	}
	sent := etree.NewElement("sent")
	fhir.SetValue(sent, instant(now))
	c.InsertChildAt(c.SelectElement("recipient").Index(), sent)
	sender := etree.NewElement("sender")
	sid := sender.CreateElement("identifier")
	system := fachdienst.SystemTelematikID
	if who.Insured() {
		system = fachdienst.SystemKVNR
	}
	fhir.SetValue(sid.CreateElement("system"), system)
	fhir.SetValue(sid.CreateElement("value"), who.ID)
	c.InsertChildAt(lastIndex(c, "recipient")+1, sender)
	rec := &commRecord{ID: id, TaskID: taskID, Sender: who.ID, Recipient: recipient, Sent: now, XML: fhir.Marshal(c)}
	if err := s.store.saveComm(rec); err != nil {
		return err
	}
	s.comms[id] = rec
	w.Header().Set("Location", baseURL(r)+"/Communication/"+id)
	writeXML(w, http.StatusCreated, renderCommunication(rec))
	return nil
}

// recipientSystems is the identifier system of each profile's recipient: insured persons by
// KVNR, pharmacies and payors by Telematik-ID.
var recipientSystems = map[string]string{
	commDispReq:        fachdienst.SystemTelematikID,
	commDiGA:           fachdienst.SystemTelematikID,
	commReply:          fachdienst.SystemKVNR,
	commRepresentative: fachdienst.SystemKVNR,
}

// checkCommunication applies the profile's rules the Fachdienst checks before it looks at the
// Task: the recipient's identifier system and, for a reply, its JSON payload (gemSpec_DM_eRp).
func checkCommunication(kind string, c *etree.Element) error {
	if system := fhir.ChildValue(c, "recipient", "identifier", "system"); system != recipientSystems[kind] {
		return failDiag(http.StatusBadRequest, "parsing / validation error",
			"Communication.recipient.identifier.system: "+kind+" is addressed by "+recipientSystems[kind])
	}
	if kind != commReply {
		return nil
	}
	content := c.FindElement("payload/contentString")
	if content == nil {
		return failDiag(http.StatusBadRequest, "parsing / validation error", "Communication.payload.contentString: a reply carries its message")
	}
	if _, err := fachdienst.ParseReplyPayload(fhir.Value(content)); err != nil {
		var p *fachdienst.PayloadProblem
		if errors.As(err, &p) {
			return failDiag(http.StatusBadRequest, p.Kind, p.Error())
		}
		return err
	}
	return nil
}

// receivedNull reports whether a received search value asks for unread messages: NULL, as
// gemSpec asks for it, in any case and with or without the prefix eq (RED's form).
func receivedNull(v string) bool {
	return strings.EqualFold(strings.TrimPrefix(strings.ToLower(v), "eq"), "null")
}

// lastIndex is the child index of the last element named tag.
func lastIndex(e *etree.Element, tag string) int {
	els := e.SelectElements(tag)
	return els[len(els)-1].Index()
}

// renderCommunication adds received to the stored Communication.
func renderCommunication(c *commRecord) *etree.Element {
	e, err := fhir.Parse(c.XML, fhir.DefaultLimits)
	if err != nil {
		return etree.NewElement("Communication")
	}
	e.CreateAttr("xmlns", fhir.Namespace)
	if c.Received != nil {
		rcv := etree.NewElement("received")
		fhir.SetValue(rcv, instant(*c.Received))
		if sent := e.SelectElement("sent"); sent != nil {
			e.InsertChildAt(sent.Index()+1, rcv)
		}
	}
	return e
}

// listCommunications is GET /Communication[/{id}]: the caller's sent and received messages.
// Fetching marks received messages as received.
func (s *Simulator) listCommunications(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id string) error {
	if !who.Insured() && !who.Pharmacy() && !who.Payor() {
		return forbiddenRole(who)
	}
	q := r.URL.Query()
	var preds []func(*commRecord) bool
	for name, values := range q {
		for _, v := range values {
			switch name {
			case "received":
				if receivedNull(v) {
					preds = append(preds, func(c *commRecord) bool { return c.Received == nil })
					continue
				}
				cmp, err := s.dateFilter(v)
				if err != nil {
					return failDiag(http.StatusBadRequest, "Invalid search parameter received", err.Error())
				}
				preds = append(preds, func(c *commRecord) bool { return c.Received != nil && cmp(*c.Received) })
			case "sent":
				cmp, err := s.dateFilter(v)
				if err != nil {
					return failDiag(http.StatusBadRequest, "Invalid search parameter sent", err.Error())
				}
				preds = append(preds, func(c *commRecord) bool { return cmp(c.Sent) })
			case "recipient":
				want := v
				preds = append(preds, func(c *commRecord) bool { return c.Recipient == want })
			case "sender":
				want := v
				preds = append(preds, func(c *commRecord) bool { return c.Sender == want })
			case "_sort", "_count", "__offset", "_format":
			default:
				return failDiag(http.StatusBadRequest, "Unknown search parameter", name)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*commRecord
	for _, c := range s.comms {
		if (c.Sender != who.ID && c.Recipient != who.ID) || (id != "" && c.ID != id) {
			continue
		}
		if !slices.ContainsFunc(preds, func(p func(*commRecord) bool) bool { return !p(c) }) {
			found = append(found, c)
		}
	}
	if id != "" && len(found) == 0 {
		return fail(http.StatusNotFound, "Communication not found")
	}
	desc := q.Get("_sort") == "-sent"
	sortResults(found, desc, func(a, b *commRecord) int { return a.Sent.Compare(b.Sent) }, func(c *commRecord) string { return c.ID })
	base := baseURL(r)
	page, links, err := paginate(len(found), q, base+"/Communication")
	if err != nil {
		return err
	}
	shown := found[page[0]:page[1]]
	now := s.now()
	for i, c := range shown {
		if c.Recipient == who.ID && c.Received == nil {
			upd := *c
			upd.Received = &now
			if err := s.store.saveComm(&upd); err != nil {
				return err
			}
			s.comms[c.ID] = &upd
			shown[i] = &upd
		}
	}
	if id != "" {
		writeXML(w, http.StatusOK, renderCommunication(shown[0]))
		return nil
	}
	b, err := s.searchset(len(found), links, now)
	if err != nil {
		return err
	}
	for _, c := range shown {
		addEntry(b, base+"/Communication/"+c.ID, renderCommunication(c), "match")
	}
	writeXML(w, http.StatusOK, b)
	return nil
}

// deleteCommunication is DELETE /Communication/{id}: senders may withdraw their messages.
func (s *Simulator) deleteCommunication(w http.ResponseWriter, who fachdienst.Identity, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comms[id]
	if !ok || c.Sender != who.ID {
		return fail(http.StatusNotFound, "Communication not found")
	}
	if err := s.store.deleteComm(id); err != nil {
		return err
	}
	delete(s.comms, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteCommunications removes the messages of a Task ($close, $abort); the caller holds s.mu.
func (s *Simulator) deleteCommunications(taskID string) error {
	for id, c := range s.comms {
		if c.TaskID != taskID {
			continue
		}
		if err := s.store.deleteComm(id); err != nil {
			return err
		}
		delete(s.comms, id)
	}
	return nil
}
