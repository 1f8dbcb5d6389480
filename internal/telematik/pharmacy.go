package telematik

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/pharmacy"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// ExtVerification is the extension on Bundle.signature that states red's check of the
// prescriber's signature, with the parts result (valueCode VALID, INCONCLUSIVE, INVALID or
// UNCHECKED), detail (valueString, the Konnektor's ResultMinor) and checked (valueDateTime).
const ExtVerification = "https://github.com/redclone/red/StructureDefinition/signature-verification"

// maxScanned bounds the prescriptions of one Data Matrix code (gematik shows up to four; a code
// holds at most nine).
const maxScanned = 9

// pharmacyAs is the tenant's pharmacy workflow acting as id (nil identity: reading the store only).
func (s *Service) pharmacyAs(id *fachdienst.Identity) (*pharmacy.Service, error) {
	if s.Prescriptions == nil {
		return nil, fhir.Fail(fhir.CodeNotSupported, "action", "e-prescriptions are not available on this server")
	}
	p := &pharmacy.Service{Store: s.Prescriptions, Verifier: s.Konnektor, Now: s.Now, Timeout: s.Timeout}
	if id != nil {
		fd := *s.Fachdienst
		fd.Identity = *id
		p.Fachdienst = &fd
	}
	return p, nil
}

// pharmacy is the workflow acting as the pharmacy whose SMC-B is inserted (RED's role rule:
// the pharmacy's actions need a pharmacy's SMC-B).
func (s *Service) pharmacy(ctx context.Context) (*pharmacy.Service, error) {
	if s.Prescriptions == nil {
		return nil, fhir.Fail(fhir.CodeNotSupported, "action", "e-prescriptions are not available on this server")
	}
	_, id, err := s.institution(ctx, true)
	if err != nil {
		return nil, err
	}
	return s.pharmacyAs(&id)
}

// TaskAction answers a pharmacy's GET /{tenant}/Task?action=…: $accept, $reject, $abort (for a
// prescription the pharmacy holds; otherwise the practice's, AbortTask) and $receipt.
func (s *Service) TaskAction(ctx context.Context, action string, q url.Values) (Answer, error) {
	a, ok := taskActions[action]
	if !ok {
		return Answer{}, fhir.Fail(fhir.CodeNotSupported, "action", "unknown Task action %q; known: $accept, $reject, $abort, $receipt", action)
	}
	if err := require(ctx, action, a.roles); err != nil {
		return Answer{}, err
	}
	return a.run(s, ctx, q)
}

// taskActions are the Task actions with their role rules ($abort: the pharmacy's or the
// practice's, see abort).
var taskActions = map[string]struct {
	run   func(s *Service, ctx context.Context, q url.Values) (Answer, error)
	roles []access.Role
}{
	"$accept":  {(*Service).acceptTask, pharmacist},
	"$reject":  {(*Service).rejectTask, pharmacist},
	"$abort":   {(*Service).abort, physicianOrPharmacist},
	"$receipt": {(*Service).receipt, pharmacist},
}

// claimRef is one prescription to accept and the parameter it came in.
type claimRef struct{ id, accessCode, at string }

// scanned is one Data Matrix reference: Task/<PrescriptionId>/$accept?ac=<AccessCode>.
var scanned = regexp.MustCompile(`^Task/([0-9.]{22})/\$accept\?ac=([0-9a-fA-F]{64})$`)

// claimRefs reads what $accept is to claim: prescriptionid and accesscode, or the Data Matrix
// content in url — one reference Task/…/$accept?ac=… or the JSON {"urls":[…]} as a scanner
// reads it.
func claimRefs(q url.Values) ([]claimRef, error) {
	content := strings.TrimSpace(q.Get("url"))
	if content == "" {
		r := claimRef{q.Get("prescriptionid"), q.Get("accesscode"), ""}
		if err := pharmacy.CheckID(r.id, "prescriptionid"); err != nil {
			return nil, err
		}
		return []claimRef{r}, pharmacy.CheckAccessCode(r.accessCode, "accesscode")
	}
	urls := []string{content}
	at := func(int) string { return "url" }
	if strings.HasPrefix(content, "{") {
		var dm struct {
			URLs []string `json:"urls"`
		}
		dec := json.NewDecoder(strings.NewReader(content))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&dm); err != nil || dec.More() {
			return nil, fhir.Fail(fhir.CodeStructure, "url", `the Data Matrix content is JSON of the form {"urls":["Task/<PrescriptionId>/$accept?ac=<AccessCode>", …]}`)
		}
		if len(dm.URLs) == 0 || len(dm.URLs) > maxScanned {
			return nil, fhir.Fail(fhir.CodeValue, "url.urls", "a Data Matrix code holds 1 to %d prescriptions", maxScanned)
		}
		urls = dm.URLs
		at = func(i int) string { return fmt.Sprintf("url.urls[%d]", i) }
	}
	refs := make([]claimRef, 0, len(urls))
	for i, u := range urls {
		m := scanned.FindStringSubmatch(u)
		if m == nil {
			return nil, fhir.Fail(fhir.CodeValue, at(i), "expected Task/<PrescriptionId>/$accept?ac=<AccessCode> as in the Data Matrix code")
		}
		if err := pharmacy.CheckID(m[1], at(i)); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(refs, func(r claimRef) bool { return r.id == m[1] }) {
			refs = append(refs, claimRef{m[1], m[2], at(i)})
		}
	}
	return refs, nil
}

// acceptTask answers $accept: the prescriptions are claimed at the Fachdienst and kept (a kept
// one is answered from the store). One prescription is answered as its KBV bundle (type
// document: Composition, MedicationRequest, Medication, Patient, Practitioner, Organization,
// Coverage) with Bundle.signature: the prescriber's signature (PKCS#7) and, in the extension
// ExtVerification, the Konnektor's check of it. Several (a Data Matrix code with several) are
// answered as a collection Bundle of such bundles; when one fails, the ones before it are kept
// and the answer is the error, naming it.
func (s *Service) acceptTask(ctx context.Context, q url.Values) (Answer, error) {
	refs, err := claimRefs(q)
	if err != nil {
		return Answer{}, err
	}
	ph, err := s.pharmacy(ctx)
	if err != nil {
		return Answer{}, err
	}
	var bundles []*etree.Element
	for i, r := range refs {
		p, err := ph.Accept(ctx, r.id, r.accessCode)
		if err == nil {
			var b *etree.Element
			if b, err = prescriptionAnswer(p); err == nil {
				bundles = append(bundles, b)
				continue
			}
		}
		if len(refs) == 1 {
			return Answer{}, err
		}
		return Answer{}, inPrescription(err, r.at, i, len(refs))
	}
	if len(bundles) == 1 {
		return Answer{http.StatusOK, bundles[0]}, nil
	}
	out := etree.NewElement("Bundle")
	out.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(out.CreateElement("type"), "collection")
	for _, b := range bundles {
		out.CreateElement("entry").CreateElement("resource").AddChild(b)
	}
	return Answer{http.StatusOK, out}, nil
}

// inPrescription places the error of the i-th of n prescriptions at its reference.
func inPrescription(err error, at string, i, n int) error {
	issues, status := fhir.Explain(err)
	if status >= 500 && len(issues) == 0 {
		return err
	}
	for k := range issues {
		issues[k].Expression = at
		issues[k].Diagnostics = fmt.Sprintf("prescription %d of %d: %s (those before it are accepted and kept)", i+1, n, issues[k].Diagnostics)
	}
	return fhir.Reject(issues)
}

// prescriptionAnswer is a kept prescription's KBV bundle with Bundle.signature: the prescriber's
// signature and red's check of it.
func prescriptionAnswer(p pharmacy.Prescription) (*etree.Element, error) {
	b, err := fhir.Parse(p.Bundle, fhir.DefaultLimits)
	if err != nil || b.Tag != "Bundle" {
		return nil, fhir.Fail(fhir.CodeProcessing, "prescriptionid", "the prescription at the E-Rezept-Fachdienst is not a readable KBV bundle; red keeps it, $reject hands it back")
	}
	for _, old := range b.SelectElements("signature") {
		b.RemoveChild(old)
	}
	sig := b.CreateElement("signature")
	ext := sig.CreateElement("extension")
	ext.CreateAttr("url", ExtVerification)
	result := p.Verification.Result
	if result == "" {
		result = "UNCHECKED"
	}
	part := func(name, typ, value string) {
		if value == "" {
			return
		}
		e := ext.CreateElement("extension")
		e.CreateAttr("url", name)
		fhir.SetValue(e.CreateElement(typ), value)
	}
	part("result", "valueCode", result)
	part("detail", "valueString", p.Verification.Detail)
	if !p.Verification.CheckedAt.IsZero() {
		part("checked", "valueDateTime", p.Verification.CheckedAt.UTC().Format(time.RFC3339))
	}
	typ := sig.CreateElement("type")
	fhir.SetValue(typ.CreateElement("system"), "urn:iso-astm:E1762-95:2013")
	fhir.SetValue(typ.CreateElement("code"), "1.2.840.10065.1.12.1.1")
	fhir.SetValue(typ.CreateElement("display"), "Author's Signature")
	when := p.Verification.Signed
	if when.IsZero() {
		when = p.Accepted
	}
	fhir.SetValue(sig.CreateElement("when"), when.UTC().Format(time.RFC3339))
	who := sig.CreateElement("who")
	if author := b.FindElement("entry/resource/Composition/author/reference"); author != nil {
		fhir.SetValue(who.CreateElement("reference"), fhir.Value(author))
	} else {
		fhir.SetValue(who.CreateElement("display"), "the prescriber")
	}
	fhir.SetValue(sig.CreateElement("sigFormat"), "application/pkcs7-mime")
	fhir.SetValue(sig.CreateElement("data"), base64.StdEncoding.EncodeToString(p.Signed))
	return b, nil
}

// rejectTask answers $reject (prescriptionid, accesscode): 204 without a body.
func (s *Service) rejectTask(ctx context.Context, q url.Values) (Answer, error) {
	id, ac := q.Get("prescriptionid"), q.Get("accesscode")
	if err := pharmacy.CheckID(id, "prescriptionid"); err != nil {
		return Answer{}, err
	}
	if err := pharmacy.CheckAccessCode(ac, "accesscode"); err != nil {
		return Answer{}, err
	}
	ph, err := s.pharmacy(ctx)
	if err != nil {
		return Answer{}, err
	}
	if err := ph.Reject(ctx, id, ac); err != nil {
		return Answer{}, err
	}
	return Answer{Status: http.StatusNoContent}, nil
}

// abort answers $abort (prescriptionid): a prescription the pharmacy holds is cancelled with its
// Secret and the pharmacy's SMC-B; any other is the practice's (AbortTask, with the AccessCode it
// keeps and the practice's SMC-B).
func (s *Service) abort(ctx context.Context, q url.Values) (Answer, error) {
	id := q.Get("prescriptionid")
	if id == "" { // a malformed one is nobody's: 404 from the practice's path, as before
		return Answer{}, pharmacy.CheckID(id, "prescriptionid")
	}
	store, err := s.pharmacyAs(nil)
	if err != nil {
		return Answer{}, err
	}
	if keeps, err := store.Keeps(ctx, id); err != nil || !keeps {
		if err != nil {
			return Answer{}, err
		}
		if err := require(ctx, "$abort of a prescription of the practice", physician); err != nil {
			return Answer{}, err
		}
		return s.AbortTask(ctx, q)
	}
	if err := require(ctx, "$abort of a prescription the pharmacy holds", pharmacist); err != nil {
		return Answer{}, err
	}
	ph, err := s.pharmacy(ctx)
	if err != nil {
		return Answer{}, err
	}
	if err := ph.Abort(ctx, id); err != nil {
		return Answer{}, err
	}
	return Answer{http.StatusOK, fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational,
		Expression: "prescriptionid", Diagnostics: "the prescription is cancelled at the E-Rezept-Fachdienst; red forgot its Secret and content"}})}, nil
}

// receipt answers $receipt (prescriptionid): the Fachdienst's signed receipt of a closed
// prescription, from the store.
func (s *Service) receipt(ctx context.Context, q url.Values) (Answer, error) {
	id := q.Get("prescriptionid")
	if err := pharmacy.CheckID(id, "prescriptionid"); err != nil {
		return Answer{}, err
	}
	store, err := s.pharmacyAs(nil)
	if err != nil {
		return Answer{}, err
	}
	r, err := store.Receipt(ctx, id)
	if err != nil {
		return Answer{}, err
	}
	b, err := fhir.Parse(r, fhir.DefaultLimits)
	if err != nil {
		return Answer{}, fhir.Fail(fhir.CodeProcessing, "prescriptionid", "the kept receipt does not parse")
	}
	return Answer{http.StatusOK, b}, nil
}

// PharmacyTask answers GET /{tenant}/Task/{prescriptionid} for a prescription the pharmacy keeps:
// a collection Bundle with the Task as the Fachdienst has it now (read with the Secret; for a
// rejected or aborted prescription, red no longer holds it: the Task then says what red last
// knew, in statusReason), the prescription's bundle as $accept answers it, and the receipt
// when closed. The Secret is never part of the answer.
func (s *Service) PharmacyTask(ctx context.Context, id string) (Answer, error) {
	if err := require(ctx, "reading a pharmacy's Task", pharmacist); err != nil {
		return Answer{}, err
	}
	if err := pharmacy.CheckID(id, "id"); err != nil {
		return Answer{}, err
	}
	ph, err := s.pharmacy(ctx)
	if err != nil {
		return Answer{}, err
	}
	st, err := ph.Task(ctx, id)
	if err != nil {
		return Answer{}, err
	}
	out := etree.NewElement("Bundle")
	out.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(out.CreateElement("type"), "collection")
	p := st.Prescription
	if st.Task != nil {
		if err := addXML(out, withoutSecret(st.Task.XML)); err != nil {
			return Answer{}, err
		}
	} else {
		out.CreateElement("entry").CreateElement("resource").AddChild(lastKnownTask(p))
	}
	if len(p.Bundle) > 0 {
		b, err := prescriptionAnswer(p)
		if err != nil {
			return Answer{}, err
		}
		out.CreateElement("entry").CreateElement("resource").AddChild(b)
	}
	if len(p.Receipt) > 0 {
		if err := addXML(out, p.Receipt); err != nil {
			return Answer{}, err
		}
	}
	return Answer{http.StatusOK, out}, nil
}

// lastKnownTask is the Task of a prescription red no longer holds, as red last knew it.
func lastKnownTask(p pharmacy.Prescription) *etree.Element {
	t := fachdienst.NewTask(p.ID)
	status, reason := "ready", "handed back by this pharmacy ($reject); the status as red last knew it"
	if p.State == pharmacy.Aborted {
		status, reason = "cancelled", "cancelled by this pharmacy ($abort)"
	}
	fhir.SetValue(t.CreateElement("status"), status)
	fhir.SetValue(t.CreateElement("statusReason").CreateElement("text"), reason)
	fhir.SetValue(t.CreateElement("intent"), "order")
	return t
}

// withoutSecret is a Task without its Secret identifier: red keeps the Secret and needs nobody
// else to.
func withoutSecret(task []byte) []byte {
	t, err := fhir.Parse(task, fhir.DefaultLimits)
	if err != nil {
		return task
	}
	for _, idn := range t.SelectElements("identifier") {
		if fhir.ChildValue(idn, "system") == fachdienst.SystemSecret {
			t.RemoveChild(idn)
		}
	}
	return fhir.Marshal(t)
}

// Dispense answers POST /{tenant}/Bundle?action=$dispense: the body (gematik's $close input
// Parameters) is checked, then the Task is closed with it and the Fachdienst's signed receipt
// answered (a Bundle); with close=false the dispensation is only recorded at the Fachdienst
// ($dispense) and the answer is an OperationOutcome. The card is the pharmacy's SMC-B or a
// pharmacist's HBA, named by cardname, or cardreader and card; none named: the pharmacy's SMC-B.
func (s *Service) Dispense(ctx context.Context, q url.Values, body *etree.Element) (Answer, error) {
	if err := require(ctx, "$dispense", pharmacist); err != nil {
		return Answer{}, err
	}
	closing := true
	switch q.Get("close") {
	case "", "true":
	case "false":
		closing = false
	default:
		return Answer{}, fhir.Fail(fhir.CodeValue, "close", "close is true (the default: close the Task) or false (record the dispensation only)")
	}
	if _, err := pharmacy.Dispensation(body, ""); err != nil { // bad data is refused before the TI is asked
		return Answer{}, err
	}
	id, err := s.dispensingIdentity(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	rx, err := pharmacy.Dispensation(body, id.ID)
	if err != nil {
		return Answer{}, err
	}
	ph, err := s.pharmacyAs(&id)
	if err != nil {
		return Answer{}, err
	}
	p, err := ph.Dispense(ctx, rx, body, closing)
	if err != nil {
		return Answer{}, err
	}
	if !closing {
		return Answer{http.StatusOK, fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational,
			Expression: "Parameters", Diagnostics: "the dispensation is recorded at the E-Rezept-Fachdienst; the Task stays in progress until $dispense closes it"}})}, nil
	}
	r, err := fhir.Parse(p.Receipt, fhir.DefaultLimits)
	if err != nil || r.Tag != "Bundle" {
		return Answer{}, fhir.Fail(fhir.CodeProcessing, "", "the receipt the E-Rezept-Fachdienst sent does not parse; red keeps it")
	}
	return Answer{http.StatusOK, r}, nil
}

// dispensingIdentity is the pharmacy a dispensation is made as: the card named (cardname, or
// cardreader and card) must be a pharmacy's SMC-B or a pharmacist's HBA (whose pharmacy is the
// inserted pharmacy SMC-B's).
func (s *Service) dispensingIdentity(ctx context.Context, q url.Values) (fachdienst.Identity, error) {
	if q.Get("cardname") == "" && q.Get("card") == "" && q.Get("cardhandle") == "" {
		if q.Get("cardreader") != "" {
			return fachdienst.Identity{}, fhir.Fail(fhir.CodeRequired, "card", "name the card in the card reader: card (its CardHandle from $getcards)")
		}
		_, id, err := s.institution(ctx, true)
		return id, err
	}
	c, err := s.card(ctx, q, konnektor.CardSMCB, konnektor.CardHBA)
	if err != nil {
		return fachdienst.Identity{}, err
	}
	cert, err := s.certificate(ctx, c.Handle, konnektor.CertAUT)
	if err != nil {
		return fachdienst.Identity{}, err
	}
	a := professionOf(cert)
	if c.Type == konnektor.CardSMCB {
		for _, oid := range a.ProfessionOIDs {
			if pharmacyOIDs[oid] {
				return fachdienst.Identity{ProfessionOID: oid, ID: a.RegistrationNumber}, nil
			}
		}
		return fachdienst.Identity{}, fhir.Fail(fhir.CodeForbidden, "card", "this card is not the SMC-B of a pharmacy")
	}
	if !slices.Contains(a.ProfessionOIDs, fachdienst.OIDApotheker) {
		return fachdienst.Identity{}, fhir.Fail(fhir.CodeForbidden, "card", "only a pharmacist's HBA or a pharmacy's SMC-B dispenses")
	}
	_, id, err := s.institution(ctx, true)
	return id, err
}
