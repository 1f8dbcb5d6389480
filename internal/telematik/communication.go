package telematik

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/fachdienst"
)

// The pharmacy's messages pass through red: they are fetched from and sent to the
// E-Rezept-Fachdienst, never stored, and no message text, KVNR or PrescriptionId appears in an
// error message or the log.

// fachdienstName names the E-Rezept-Fachdienst in errors.
const fachdienstName = "E-Rezept-Fachdienst"

// Received answers GET /{tenant}/Communication?action=$received: the messages to the pharmacy
// whose SMC-B is inserted (insured persons' assignments and requests) that nobody fetched yet,
// newest first, as a searchset Bundle of the Communications as the Fachdienst gave them. The
// Fachdienst marks them read when it hands them out, so a second call does not return them again.
// all=true returns the read ones too; since=YYYY-MM-DD only those sent on or after that day.
func (s *Service) Received(ctx context.Context, q url.Values) (Answer, error) {
	if err := require(ctx, "$received", pharmacist); err != nil {
		return Answer{}, err
	}
	query := url.Values{"_sort": {"-sent"}}
	switch all := q.Get("all"); all {
	case "", "false":
		query.Set("received", "NULL")
	case "true":
	default:
		return Answer{}, fhir.Fail(fhir.CodeValue, "all", "all is true or false")
	}
	if since := q.Get("since"); since != "" {
		if _, err := time.Parse(time.DateOnly, since); err != nil {
			return Answer{}, fhir.Fail(fhir.CodeValue, "since", "since is a day, YYYY-MM-DD")
		}
		query.Set("sent", "ge"+since)
	}
	_, id, err := s.institution(ctx, true)
	if err != nil {
		return Answer{}, err
	}
	query.Set("recipient", id.ID)
	fd := *s.Fachdienst
	fd.Identity = id
	var msgs []fachdienst.Communication
	var broken error
	if err := s.call(ctx, fachdienstName, func(ctx context.Context) (err error) {
		msgs, err = fd.Communications(ctx, query)
		if answerBroken(err) {
			broken, err = err, nil
		}
		return withoutDiagnostics(err)
	}); err != nil {
		return Answer{}, err
	}
	if broken != nil {
		return Answer{}, fhir.Wrap(broken, fhir.CodeTransient, "the %s answered with something that is not a Bundle of Communications; "+
			"the messages it handed out are marked read and come again with all=true", fachdienstName)
	}
	set := fhir.SearchSet{ID: uuid.NewString(), Updated: s.now(), Total: len(msgs)}
	for i, m := range msgs {
		res, err := checkReceived(i, m, id.ID)
		if err != nil {
			return Answer{}, err
		}
		set.Entries = append(set.Entries, fhir.Entry{FullURL: strings.TrimRight(fd.BaseURL, "/") + "/Communication/" + m.ID, Resource: res})
	}
	// newest first, also when the Fachdienst sorted otherwise
	slices.SortStableFunc(set.Entries, func(a, b fhir.Entry) int {
		return sentOf(b.Resource).Compare(sentOf(a.Resource))
	})
	if s.Announce != nil && len(set.Entries) > 0 {
		msgs := make([]*etree.Element, len(set.Entries))
		for i, e := range set.Entries {
			msgs[i] = e.Resource
		}
		// the answer goes out even when the announcement could not be stored: the messages are
		// marked read at the Fachdienst already, and all=true fetches them again
		_ = s.Announce(ctx, "message-received", msgs)
	}
	return Answer{http.StatusOK, set.Element()}, nil
}

// checkReceived parses the i-th Communication of the Fachdienst's answer and checks that it has
// what a pharmacy needs to act on it.
func checkReceived(i int, m fachdienst.Communication, pharmacy string) (*etree.Element, error) {
	at := func(field string) string {
		return fmt.Sprintf("Bundle.entry.resource.ofType(Communication)[%d].%s", i, field)
	}
	missing := ""
	switch {
	case m.ID == "":
		missing = "id"
	case m.Profile == "":
		missing = "meta.profile"
	case m.TaskID == "":
		missing = "basedOn.reference"
	case m.Sent.IsZero():
		missing = "sent"
	case m.Sender == "":
		missing = "sender.identifier.value"
	case m.Recipient == "":
		missing = "recipient.identifier.value"
	}
	if missing != "" {
		return nil, fhir.Fail(fhir.CodeTransient, at(missing), "the %s sent a Communication without %s; "+
			"the messages it handed out are marked read and come again with all=true", fachdienstName, missing)
	}
	if m.Recipient != pharmacy {
		return nil, fhir.Fail(fhir.CodeTransient, at("recipient.identifier.value"), "the %s sent a Communication for another recipient", fachdienstName)
	}
	res, err := fhir.Parse(m.XML, fhir.DefaultLimits)
	if err != nil {
		return nil, fhir.Wrap(err, fhir.CodeTransient, "the %s sent a Communication that does not parse", fachdienstName)
	}
	return res, nil
}

func sentOf(c *etree.Element) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, fhir.ChildValue(c, "sent"))
	return t
}

// answerBroken reports whether err of a Fachdienst call is about the content of its answer: not a
// refusal, not the transport.
func answerBroken(err error) bool {
	var fe *fachdienst.Error
	var ne net.Error
	return err != nil && !errors.As(err, &fe) && !errors.As(err, &ne) && !isUnreachable(err) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// withoutDiagnostics drops the diagnostics of a Fachdienst refusal, which may quote what was
// sent (a message's text): the refusal's fixed text is what the caller and the log see.
func withoutDiagnostics(err error) error {
	var fe *fachdienst.Error
	if !errors.As(err, &fe) {
		return err
	}
	quiet := *fe
	quiet.Diagnostics = ""
	return &quiet
}

// replyParameters are the parameters of the short form of $reply, each with the payload field it
// fills.
var replyParameters = map[string]string{
	"text":              "info_text",
	"supplyOptionsType": "supplyOptionsType",
	"url":               "url",
	"pickUpCodeHR":      "pickUpCodeHR",
	"pickUpCodeDMC":     "pickUpCodeDMC",
}

// Reply answers POST /{tenant}/Communication?action=$reply: the pharmacy whose SMC-B is inserted
// sends a message to an insured person about a prescription. The body is a
// GEM_ERP_PR_Communication_Reply, or Parameters (text, supplyOptionsType — onPremise when not
// given —, url, pickUpCodeHR, pickUpCodeDMC) with prescriptionid and kvnr in the query, from which
// red builds the reply. Every problem of the request is reported at once; the answer is 201 with
// the Communication as the Fachdienst stored it.
func (s *Service) Reply(ctx context.Context, q url.Values, body *etree.Element) (Answer, error) {
	if err := require(ctx, "$reply", pharmacist); err != nil {
		return Answer{}, err
	}
	if body == nil {
		return Answer{}, fhir.Fail(fhir.CodeRequired, "", "send the reply: a GEM_ERP_PR_Communication_Reply, or Parameters with text and the query's prescriptionid and kvnr")
	}
	var c *etree.Element
	var issues fhir.Issues
	switch body.Tag {
	case "Communication":
		c = body.Copy()
		issues = checkReply(c)
	case "Parameters":
		c, issues = buildReply(q, body)
	default:
		return Answer{}, fhir.Fail(fhir.CodeStructure, body.Tag, "send a Communication (GEM_ERP_PR_Communication_Reply) or Parameters, not a %s", body.Tag)
	}
	if len(issues) > 0 {
		return Answer{}, fhir.Reject(issues)
	}
	_, id, err := s.institution(ctx, true)
	if err != nil {
		return Answer{}, err
	}
	if err := setSender(c, id.ID); err != nil {
		return Answer{}, err
	}
	fd := *s.Fachdienst
	fd.Identity = id
	var sent fachdienst.Communication
	var broken error
	if err := s.call(ctx, fachdienstName, func(ctx context.Context) (err error) {
		sent, err = fd.SendCommunication(ctx, fhir.Marshal(c))
		if answerBroken(err) {
			broken, err = err, nil
		}
		return withoutDiagnostics(err)
	}); err != nil {
		return Answer{}, err
	}
	if broken != nil {
		return Answer{}, fhir.Wrap(broken, fhir.CodeTransient, "the %s took the reply but answered with something that is not the Communication", fachdienstName)
	}
	res, err := fhir.Parse(sent.XML, fhir.DefaultLimits)
	if err != nil {
		return Answer{}, fhir.Wrap(err, fhir.CodeTransient, "the %s took the reply but its answer does not parse", fachdienstName)
	}
	return Answer{http.StatusCreated, res}, nil
}

// checkReply checks a GEM_ERP_PR_Communication_Reply as the profile and gemSpec_DM_eRp's payload
// state it; sender, sent and received are the Fachdienst's to set.
func checkReply(c *etree.Element) fhir.Issues {
	var is fhir.Issues
	add := func(code fhir.IssueCode, expr, format string, args ...any) {
		is = append(is, fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: expr, Diagnostics: fmt.Sprintf(format, args...)})
	}
	profile := fhir.ChildValue(c, "meta", "profile")
	if name, _, _ := strings.Cut(profile[strings.LastIndex(profile, "/")+1:], "|"); name != "GEM_ERP_PR_Communication_Reply" {
		add(fhir.CodeValue, "Communication.meta.profile", "a pharmacy's reply has the profile %s", strings.Split(fachdienst.ProfileCommunicationReply, "|")[0])
	}
	if status := fhir.ChildValue(c, "status"); status != "unknown" {
		add(fhir.CodeValue, "Communication.status", "the status of a reply is unknown (fixed by the profile)")
	}
	switch based := c.SelectElements("basedOn"); len(based) {
	case 1:
		ref := fhir.ChildValue(based[0], "reference")
		id, ok := strings.CutPrefix(ref, "Task/")
		switch {
		case ref == "":
			add(fhir.CodeRequired, "Communication.basedOn.reference", "a reply names its prescription: Task/<PrescriptionId>")
		case !ok || strings.ContainsAny(id, "/?"):
			add(fhir.CodeValue, "Communication.basedOn.reference", "a reply's basedOn is Task/<PrescriptionId>")
		default:
			if err := ident.PrescriptionID(id); err != nil {
				add(fhir.CodeValue, "Communication.basedOn.reference", "%s", err.Error())
			}
		}
	case 0:
		add(fhir.CodeRequired, "Communication.basedOn", "a reply names its prescription: basedOn Task/<PrescriptionId>")
	default:
		add(fhir.CodeStructure, "Communication.basedOn", "a reply names one prescription, not %d", len(based))
	}
	switch recipients := c.SelectElements("recipient"); len(recipients) {
	case 1:
		system := fhir.ChildValue(recipients[0], "identifier", "system")
		value := fhir.ChildValue(recipients[0], "identifier", "value")
		if system != fachdienst.SystemKVNR {
			add(fhir.CodeValue, "Communication.recipient.identifier.system", "a reply goes to an insured person, identified by %s (KVNR)", fachdienst.SystemKVNR)
		}
		if value == "" {
			add(fhir.CodeRequired, "Communication.recipient.identifier.value", "the insured person's KVNR is required")
		} else if err := ident.KVNR(value); err != nil {
			add(fhir.CodeValue, "Communication.recipient.identifier.value", "%s", err.Error())
		}
	case 0:
		add(fhir.CodeRequired, "Communication.recipient", "a reply names the insured person: recipient.identifier with the KVNR")
	default:
		add(fhir.CodeStructure, "Communication.recipient", "a reply goes to one insured person, not %d", len(recipients))
	}
	switch payloads := c.SelectElements("payload"); len(payloads) {
	case 1:
		content := payloads[0].SelectElement("contentString")
		if content == nil {
			add(fhir.CodeRequired, "Communication.payload.contentString", "a reply carries its message as contentString (JSON after gemSpec_DM_eRp)")
			break
		}
		if _, err := fachdienst.ParseReplyPayload(fhir.Value(content)); err != nil {
			add(fhir.CodeValue, "Communication.payload.contentString", "%s", err.Error())
		}
	case 0:
		add(fhir.CodeRequired, "Communication.payload", "a reply carries its message: payload.contentString")
	default:
		add(fhir.CodeStructure, "Communication.payload", "a reply has one payload, not %d", len(payloads))
	}
	return is
}

// buildReply builds a GEM_ERP_PR_Communication_Reply from the short form: prescriptionid and kvnr
// in the query, the message in Parameters.
func buildReply(q url.Values, params *etree.Element) (*etree.Element, fhir.Issues) {
	var is fhir.Issues
	add := func(code fhir.IssueCode, expr, format string, args ...any) {
		is = append(is, fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: expr, Diagnostics: fmt.Sprintf(format, args...)})
	}
	taskID, kvnr := q.Get("prescriptionid"), q.Get("kvnr")
	if taskID == "" {
		add(fhir.CodeRequired, "prescriptionid", "name the prescription the reply is about: prescriptionid=…")
	} else if err := ident.PrescriptionID(taskID); err != nil {
		add(fhir.CodeValue, "prescriptionid", "%s", err.Error())
	}
	if kvnr == "" {
		add(fhir.CodeRequired, "kvnr", "name the insured person the reply goes to: kvnr=… (a reply goes to an insured person only)")
	} else if err := ident.KVNR(kvnr); err != nil {
		add(fhir.CodeValue, "kvnr", "%s", err.Error())
	}
	fields := map[string]string{}
	for i, p := range params.SelectElements("parameter") {
		name := fhir.ChildValue(p, "name")
		expr := "Parameters.parameter[" + strconv.Itoa(i) + "]"
		field, known := replyParameters[name]
		var value *etree.Element
		for _, ch := range p.ChildElements() {
			if strings.HasPrefix(ch.Tag, "value") {
				value = ch
			}
		}
		switch {
		case !known:
			add(fhir.CodeNotSupported, expr+".name", "a reply's parameters are text, supplyOptionsType, url, pickUpCodeHR and pickUpCodeDMC")
		case value == nil:
			add(fhir.CodeRequired, expr+".value", "parameter %s has no value", name)
		default:
			if _, twice := fields[field]; twice {
				add(fhir.CodeStructure, expr, "parameter %s is given twice", name)
			}
			fields[field] = fhir.Value(value)
		}
	}
	p := fachdienst.ReplyPayload{Version: 1, SupplyOptionsType: fachdienst.SupplyOnPremise, InfoText: fields["info_text"], URL: fields["url"],
		PickUpCodeHR: fields["pickUpCodeHR"], PickUpCodeDMC: fields["pickUpCodeDMC"]}
	if v, ok := fields["supplyOptionsType"]; ok {
		p.SupplyOptionsType = v
	}
	if p.InfoText == "" && p.URL == "" && p.PickUpCodeHR == "" && p.PickUpCodeDMC == "" {
		add(fhir.CodeRequired, "Parameters.parameter", "a reply says something: text, url or a pick-up code")
	} else if err := p.Check(); err != nil {
		expr, msg := "Parameters.parameter", err.Error()
		var pp *fachdienst.PayloadProblem
		if errors.As(err, &pp) && pp.Field != "" {
			name := pp.Field
			if name == "info_text" {
				name = "text"
			}
			expr, msg = "Parameters.parameter.where(name='"+name+"').value", name+": "+pp.Reason
		}
		add(fhir.CodeValue, expr, "%s", msg)
	}
	if len(is) > 0 {
		return nil, is
	}
	c := etree.NewElement("Communication")
	c.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(c.CreateElement("meta").CreateElement("profile"), fachdienst.ProfileCommunicationReply)
	fhir.SetValue(c.CreateElement("basedOn").CreateElement("reference"), "Task/"+taskID)
	fhir.SetValue(c.CreateElement("status"), "unknown")
	rid := c.CreateElement("recipient").CreateElement("identifier")
	fhir.SetValue(rid.CreateElement("system"), fachdienst.SystemKVNR)
	fhir.SetValue(rid.CreateElement("value"), kvnr)
	fhir.SetValue(c.CreateElement("payload").CreateElement("contentString"), p.JSON())
	return c, nil
}

// setSender names the pharmacy as sender (right after recipient, as FHIR orders Communication's
// elements); a reply naming another sender is refused.
func setSender(c *etree.Element, telematikID string) error {
	if old := c.SelectElement("sender"); old != nil {
		if v := fhir.ChildValue(old, "identifier", "value"); v != telematikID {
			return fhir.Fail(fhir.CodeValue, "Communication.sender.identifier.value",
				"the sender is the pharmacy whose SMC-B is inserted; leave sender out and the E-Rezept-Fachdienst sets it")
		}
		return nil
	}
	sender := etree.NewElement("sender")
	id := sender.CreateElement("identifier")
	fhir.SetValue(id.CreateElement("system"), fachdienst.SystemTelematikID)
	fhir.SetValue(id.CreateElement("value"), telematikID)
	recipients := c.SelectElements("recipient")
	c.InsertChildAt(recipients[len(recipients)-1].Index()+1, sender)
	return nil
}
