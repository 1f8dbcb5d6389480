package telematik

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/fhir/kbv/vos"
	"github.com/redclone/red/internal/erp"
	"github.com/redclone/red/internal/printout"
	"github.com/redclone/red/ti/fachdienst"
	"github.com/redclone/red/ti/konnektor"
)

// prescriptions is the tenant's e-prescription workflow, acting as the practice whose SMC-B is
// inserted (for signing; smcbiccsn, or RED's spelling smbiccsn, picks one of several) or without
// the TI (queueing, polling: q nil).
func (s *Service) prescriptions(ctx context.Context, q url.Values) (*erp.Service, error) {
	if s.Prescriptions == nil {
		return nil, fhir.Fail(fhir.CodeNotSupported, "action", "e-prescriptions are not available on this server")
	}
	e := &erp.Service{Store: s.Prescriptions, Signer: s.Konnektor, Now: s.Now, Timeout: s.Timeout}
	if q != nil {
		iccsn := q.Get("smcbiccsn")
		if iccsn == "" {
			iccsn = q.Get("smbiccsn")
		}
		_, id, err := s.institution(ctx, false, iccsn)
		if err != nil {
			return nil, err
		}
		fd := *s.Fachdienst
		fd.Identity = id
		e.Fachdienst = &fd
	}
	return e, nil
}

// createERPTask answers $createerptask: the KBV bundle (KBV_PR_ERP_Bundle, a document) is
// validated as if typed by hand and queued for signing, identified by its MedicationRequest's
// id; the same id again replaces a prescription not yet signed. The answer (201) is an
// OperationOutcome naming the queued MedicationRequest, with the validation's warnings.
func (s *Service) createERPTask(ctx context.Context, _ url.Values, body *etree.Element) (Answer, error) {
	e, err := s.prescriptions(ctx, nil)
	if err != nil {
		return Answer{}, err
	}
	p, warnings, err := s.queue(ctx, e, body)
	if err != nil {
		return Answer{}, err
	}
	out := append(fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational, Expression: "MedicationRequest.id",
		Diagnostics: "queued for signing as MedicationRequest/" + p.ID + "; $processerp signs and sends it"}}, warnings...)
	return Answer{http.StatusCreated, fhir.OperationOutcome(out)}, nil
}

// CreateERP answers POST /{tenant}/Bundle?action=$createerp: the prescription is validated,
// queued and at once signed with the HBA (cardname, card or hbaiccsn; the practice's SMC-B by
// smcbiccsn, also spelled smbiccsn) and activated. The answer (200) is <Prescription> with the
// MedicationRequest's id, the Task's id (the PrescriptionId), its AccessCode and the Data Matrix
// content; with patientdocument also the Patientenausdruck, a base64 PDF with the Data Matrix
// code. A prescription that did not get through stays queued for $processerp: the answer is
// then an error naming the reason.
func (s *Service) CreateERP(ctx context.Context, q url.Values, body *etree.Element) (Answer, error) {
	if err := require(ctx, "$createerp", physician); err != nil {
		return Answer{}, err
	}
	e, err := s.prescriptions(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	p, _, err := s.queue(ctx, e, body) // before the PIN is asked for: bad data is refused first
	if err != nil {
		return Answer{}, err
	}
	hba, err := s.signer(ctx, e, q, nil)
	if err != nil {
		return Answer{}, err
	}
	ps, err := e.Process(ctx, hba, p.ID)
	if err != nil {
		return Answer{}, fhir.Wrap(err, fhir.CodeTransient, "the prescription is queued; $processerp takes it up again: %s", err.Error())
	}
	if len(ps) != 1 || ps[0].State != erp.Activated {
		reason := "it was not processed"
		if len(ps) == 1 {
			reason = ps[0].Reason
		}
		return Answer{}, fhir.Fail(fhir.CodeTransient, "", "the prescription is queued, not yet at the Fachdienst (%s); $processerp takes it up again", reason)
	}
	p = ps[0]
	out := etree.NewElement("Prescription")
	text(out, "id", p.ID)
	text(out, "taskid", p.TaskID)
	text(out, "accesscode", p.AccessCode)
	text(out, "url", dataMatrix(p))
	if q.Has("patientdocument") {
		pdf, err := patientDocument(p, s.now())
		if err != nil {
			return Answer{}, fhir.Wrap(err, fhir.CodeProcessing, "the prescription is at the Fachdienst, but its printout failed: %s", err.Error())
		}
		text(out, "patientdocument", base64.StdEncoding.EncodeToString(pdf))
	}
	return Answer{http.StatusOK, out}, nil
}

// queue validates the prescription bundle, stores its persons and queues it; it returns the
// prescription and the validation's warnings. A VOS Speicherbundle (KBV_PR_VoS_Bundle_VoS_PVS)
// is converted to the e-prescription bundle first (package vos), and every finding names its
// place in the posted bundle.
func (s *Service) queue(ctx context.Context, e *erp.Service, body *etree.Element) (erp.Prescription, fhir.Issues, error) {
	var conv *vos.Result
	if vos.Is(body) {
		var err error
		if conv, err = vos.Convert(body); err != nil {
			return erp.Prescription{}, nil, err
		}
		body = conv.Bundle
	}
	posted := entryKeys(body)
	err := s.completeFromStore(ctx, body)
	var p erp.Prescription
	var warnings fhir.Issues
	if err == nil {
		p, warnings, err = prescriptionOf(body, s.now())
	}
	if conv != nil {
		warnings, err = conv.Outcome(warnings, err)
	}
	if err != nil {
		return p, nil, err
	}
	if err := s.storePersons(ctx, body, posted); err != nil {
		return p, nil, err
	}
	if p.Group, err = s.patientGroup(ctx, body); err != nil {
		return p, nil, err
	}
	return p, warnings, e.Queue(ctx, p)
}

// patientGroup is the user group of the stored patient of a prescription bundle: the
// prescription's, so that who may not see the patient sees nothing of the prescription.
func (s *Service) patientGroup(ctx context.Context, b *etree.Element) (string, error) {
	if s.Records == nil {
		return "", nil
	}
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil && r.Tag == "Patient" {
			return s.Records.GroupOf(ctx, "Patient", fhir.ChildValue(r, "id"))
		}
	}
	return "", nil
}

// entryKeys are the Type/id of a bundle's entries.
func entryKeys(b *etree.Element) map[string]bool {
	keys := map[string]bool{}
	if b == nil {
		return keys
	}
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil {
			keys[r.Tag+"/"+fhir.ChildValue(r, "id")] = true
		}
	}
	return keys
}

// completeFromStore adds to a prescription bundle the persons it refers to but does not carry
// — a known patient, their stored coverage, the practice — from the stored records, so that a
// practice system may send a new medication for a known patient (RED's 0234). The stored
// resources come as the KBV bundle writes them (asInBundle); a reference to a person neither in the bundle nor stored is refused.
func (s *Service) completeFromStore(ctx context.Context, b *etree.Element) error {
	if b == nil || b.Tag != "Bundle" || s.Patients == nil {
		return nil
	}
	have := entryKeys(b)
	base := "" // the bundle's fullUrls up to Type/id, for the entries added
	for _, e := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(e.SelectElement("resource")); r != nil {
			if u, ok := strings.CutSuffix(fhir.ChildValue(e, "fullUrl"), r.Tag+"/"+fhir.ChildValue(r, "id")); ok && strings.HasPrefix(u, "http") {
				base = u
				break
			}
		}
	}
	var issues fhir.Issues
	entries := b.SelectElements("entry")
	for i := 0; i < len(entries); i++ { // entries added are searched too
		res := fhir.ResourceOf(entries[i].SelectElement("resource"))
		if res == nil {
			continue
		}
		for _, ref := range res.FindElements(".//reference") {
			typ, id, ok := strings.Cut(unpinned(fhir.Value(ref)), "/")
			if !ok || !slices.Contains(personTypes, typ) || have[typ+"/"+id] {
				continue
			}
			stored, err := s.Patients.Read(ctx, typ, id)
			if err != nil {
				issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeInvalid, Expression: fmt.Sprintf("Bundle.entry[%d].resource", i),
					Diagnostics: fmt.Sprintf("refers to a %s that is neither in the bundle nor stored", typ)})
				have[typ+"/"+id] = true
				continue
			}
			entry := b.CreateElement("entry")
			entry.CreateElement("fullUrl").CreateAttr("value", base+typ+"/"+id)
			entry.CreateElement("resource").AddChild(asInBundle(stored))
			entries = append(entries, entry)
			have[typ+"/"+id] = true
		}
	}
	if len(issues) > 0 {
		return fhir.Reject(issues)
	}
	return nil
}

// asInBundle is a copy of a stored resource as a KBV bundle carries it: without what red wrote
// into it (the narrative, meta.versionId and meta.lastUpdated, which the KBV profiles forbid) and
// with its references unpinned (Type/id).
func asInBundle(stored *etree.Element) *etree.Element {
	res := stored.Copy()
	if t := res.SelectElement("text"); t != nil {
		res.RemoveChild(t)
	}
	if meta := res.SelectElement("meta"); meta != nil {
		for _, tag := range []string{"versionId", "lastUpdated"} {
			if m := meta.SelectElement(tag); m != nil {
				meta.RemoveChild(m)
			}
		}
	}
	for _, r := range res.FindElements(".//reference") {
		fhir.SetValue(r, unpinned(fhir.Value(r)))
	}
	return res
}

// unpinned is a reference without its version: Patient/1/_history/2 → Patient/1.
func unpinned(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		return ref[:i]
	}
	return ref
}

// personTypes are the resources of a prescription stored like any posted data.
var personTypes = []string{"Patient", "Coverage", "Practitioner", "PractitionerRole", "Organization"}

// storePersons stores the prescription's patient, coverage, practitioner and organization that
// were posted (their Type/id in posted) like any posted data (same records, versions and search
// indexes): as a transaction of updates.
func (s *Service) storePersons(ctx context.Context, b *etree.Element, posted map[string]bool) error {
	if s.Records == nil {
		return nil
	}
	tx := etree.NewElement("Bundle")
	tx.CreateAttr("xmlns", fhir.Namespace)
	tx.CreateElement("type").CreateAttr("value", "transaction")
	for _, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		if res == nil || !slices.Contains(personTypes, res.Tag) || !posted[res.Tag+"/"+fhir.ChildValue(res, "id")] {
			continue
		}
		entry := tx.CreateElement("entry")
		if u := fhir.ChildValue(e, "fullUrl"); u != "" {
			entry.CreateElement("fullUrl").CreateAttr("value", u)
		}
		entry.CreateElement("resource").AddChild(res.Copy())
		req := entry.CreateElement("request")
		req.CreateElement("method").CreateAttr("value", "PUT")
		req.CreateElement("url").CreateAttr("value", res.Tag+"/"+fhir.ChildValue(res, "id"))
	}
	if len(tx.SelectElements("entry")) == 0 {
		return nil
	}
	_, err := s.Records.PostBundle(ctx, tx)
	return err
}

// prescriptionOf validates a KBV prescription bundle and reads what the workflow keeps of it.
func prescriptionOf(b *etree.Element, now time.Time) (erp.Prescription, fhir.Issues, error) {
	if b == nil || b.Tag != "Bundle" || fhir.ChildValue(b, "type") != "document" {
		return erp.Prescription{}, nil, fhir.Fail(fhir.CodeInvalid, "Bundle.type", "send the prescription as a KBV_PR_ERP_Bundle (a Bundle of type document)")
	}
	issues := validate.Prescription(b, now, true)
	var p erp.Prescription
	var rx, med, patient, coverage *etree.Element
	for _, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		if res == nil {
			continue
		}
		switch res.Tag {
		case "MedicationRequest":
			rx = res
		case "Medication":
			med = res
		case "Patient":
			patient = res
		case "Coverage":
			coverage = res
		}
	}
	if rx == nil {
		issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeRequired, Expression: "Bundle.entry", Diagnostics: "the bundle has no MedicationRequest"})
	}
	issues = append(issues, workflowIssues(b)...)
	var errs, warnings fhir.Issues
	for _, i := range issues {
		if i.Severity == fhir.SeverityError || i.Severity == fhir.SeverityFatal {
			errs = append(errs, i)
		} else {
			warnings = append(warnings, i)
		}
	}
	if len(errs) > 0 {
		return p, nil, fhir.Reject(errs)
	}
	p.ID = fhir.ChildValue(rx, "id")
	p.Bundle = fhir.Marshal(b)
	p.FlowType = flowType(b, coverage)
	p.Medication = medicationName(med)
	if patient != nil {
		p.Patient = erp.Person{Family: fhir.ChildValue(patient, "name", "family"), Given: fhir.ChildValue(patient, "name", "given"), Birthday: fhir.ChildValue(patient, "birthDate")}
	}
	return p, warnings, nil
}

// flowType is the Task's flow type: the one the bundle's PrescriptionId names when the practice
// system set one (169 and 209: direct assignment), else 200 for private insurance and 160.
func flowType(b, coverage *etree.Element) int {
	id := fhir.ChildValue(b, "identifier", "value")
	if f, _, ok := strings.Cut(id, "."); ok {
		if n, err := strconv.Atoi(f); err == nil && (n == 169 || n == 209 || n == 160 || n == 200) {
			return n
		}
	}
	if coverage != nil && fhir.ChildValue(coverage, "type", "coding", "code") == "PKV" {
		return 200
	}
	return 160
}

// medicationCategory is the extension naming a medication's category: 00 medicine, 01 narcotic
// (BtM), 02 AMVV §3a (Thalidomid and alike, T-Rezept).
const medicationCategory = "https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Medication_Category"

// workflowIssues are the E-Rezept-Fachdienst's rules for what it activates, checked when a
// prescription is queued rather than failing at signing: the flow type a PrescriptionId names
// fits the coverage (160 and 169 statutory, 200 and 209 private insurance), and narcotics (BtM)
// and T-Rezept medicines are not prescribed electronically.
func workflowIssues(b *etree.Element) fhir.Issues {
	var issues fhir.Issues
	named := 0
	if f, _, ok := strings.Cut(fhir.ChildValue(b, "identifier", "value"), "."); ok {
		named, _ = strconv.Atoi(f)
	}
	for i, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		at := fmt.Sprintf("Bundle.entry[%d].resource", i)
		switch {
		case res == nil:
		case res.Tag == "Coverage":
			pkv := fhir.ChildValue(res, "type", "coding", "code") == "PKV"
			if pkv && (named == 160 || named == 169) || !pkv && (named == 200 || named == 209) {
				issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: "Bundle.identifier.value",
					Diagnostics: fmt.Sprintf("flow type %d does not fit the coverage (%s): 160 and 169 are for statutory insurance, 200 and 209 for private insurance (PKV)", named, at+".type")})
			}
		case res.Tag == "Medication":
			for j, x := range res.SelectElements("extension") {
				if x.SelectAttrValue("url", "") != medicationCategory {
					continue
				}
				if code := fhir.ChildValue(x, "valueCoding", "code"); code == "01" || code == "02" {
					issues = append(issues, fhir.Issue{Severity: fhir.SeverityError, Code: fhir.CodeValue, Expression: fmt.Sprintf("%s.extension[%d].valueCoding.code", at, j),
						Diagnostics: "narcotics (BtM, 01) and medicines of AMVV §3a (T-Rezept, 02) are not prescribed electronically: the E-Rezept-Fachdienst refuses them"})
				}
			}
		}
	}
	return issues
}

// medicationName is the medication's display text: its code's text (trade name, free text) or,
// for a compounded one, its ingredients' text.
func medicationName(med *etree.Element) string {
	if med == nil {
		return ""
	}
	if t := fhir.ChildValue(med, "code", "text"); t != "" {
		return t
	}
	var parts []string
	for _, ing := range med.SelectElements("ingredient") {
		if t := fhir.ChildValue(ing, "itemCodeableConcept", "text"); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, ", ")
}

// processERP answers $processerp: the pending prescriptions are signed with the HBA (card,
// cardname or hbaiccsn; one PIN entry for the batch, none when Komfortsignatur is on) and sent to the
// Fachdienst. The answer is RED's <Prescriptions>, one <person> per patient; a prescription that
// did not get through carries <status> and <reason> and is taken up again by the next call.
func (s *Service) processERP(ctx context.Context, q url.Values, _ *etree.Element) (Answer, error) {
	e, err := s.prescriptions(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	hba, err := s.signer(ctx, e, q, nil)
	if err != nil {
		return Answer{}, err
	}
	ps, err := e.Process(ctx, hba)
	if err != nil {
		return Answer{}, fhir.Wrap(err, fhir.CodeTransient, "the batch stopped; what it did is kept, call $processerp again: %s", err.Error())
	}
	return Answer{http.StatusOK, prescriptionsAnswer(ps)}, nil
}

// signer readies the batch e to sign with the HBA the request names (physicianHBA: a physician's,
// its signature PIN entered) and to add that physician to bundles queued without one (preparer);
// it returns the HBA's handle.
func (s *Service) signer(ctx context.Context, e *erp.Service, q url.Values, asking func()) (string, error) {
	hba, err := s.physicianHBA(ctx, q, asking)
	if err != nil {
		return "", err
	}
	e.Prepare = s.preparer(q, hba)
	return hba, nil
}

// physicianHBA is the handle of the HBA the request names (card, cardname or hbaiccsn), once
// it is known to be a physician's and its signature PIN is entered: only a physician's HBA signs
// prescriptions. asking, when set, is called before the PIN is asked for at the card terminal.
func (s *Service) physicianHBA(ctx context.Context, q url.Values, asking func()) (string, error) {
	if iccsn := q.Get("hbaiccsn"); iccsn != "" && q.Get("card") == "" && q.Get("cardname") == "" {
		cards, err := s.cardsOf(ctx, "", konnektor.CardHBA)
		if err != nil {
			return "", err
		}
		q = url.Values{"card": {""}}
		for _, c := range cards {
			if c.ICCSN == iccsn {
				q.Set("card", c.Handle)
			}
		}
		if q.Get("card") == "" {
			return "", fhir.Fail(fhir.CodeNotFound, "hbaiccsn", "no HBA with this ICCSN is inserted")
		}
	}
	card, err := s.card(ctx, q, konnektor.CardHBA)
	if err != nil {
		return "", err
	}
	cert, err := s.certificate(ctx, card.Handle, konnektor.CertAUT)
	if err != nil {
		return "", err
	}
	if !prescribes(cert) {
		return "", fhir.Fail(fhir.CodeForbidden, "card", "only a physician's or dentist's HBA signs prescriptions")
	}
	res, err := s.unlockQES(ctx, card.Handle, asking)
	if err == nil && res != konnektor.PinOK {
		err = fhir.Fail(fhir.CodeSecurity, "card", "the HBA's signature PIN was not entered right (%s): nothing was signed", res)
	}
	return card.Handle, err
}

// prescribes tells whether a card's certificate is a physician's or a dentist's.
func prescribes(cert *x509.Certificate) bool {
	a := professionOf(cert)
	return slices.Contains(a.ProfessionOIDs, fachdienst.OIDArzt) || slices.Contains(a.ProfessionOIDs, fachdienst.OIDZahnarzt)
}

// prescriptionsAnswer is RED's <Prescriptions>: per patient their person and prescriptions, each
// with its name and the Data Matrix content.
func prescriptionsAnswer(ps []erp.Prescription) *etree.Element {
	root := etree.NewElement("Prescriptions")
	people := map[erp.Person]*etree.Element{}
	for _, p := range ps {
		list, ok := people[p.Patient]
		if !ok {
			person := root.CreateElement("person")
			who := person.CreateElement("person")
			text(who, "lastname", p.Patient.Family)
			text(who, "firstname", p.Patient.Given)
			text(who, "birthday", p.Patient.Birthday)
			list = person.CreateElement("prescriptions")
			people[p.Patient] = list
		}
		rx := list.CreateElement("prescription")
		text(rx, "name", p.Medication)
		text(rx, "id", p.ID)
		if p.State == erp.Activated {
			text(rx, "url", dataMatrix(p))
			continue
		}
		text(rx, "status", string(p.State))
		text(rx, "reason", p.Reason)
	}
	return root
}

// dataMatrix is the content of a prescription's Data Matrix code, as gematik defines it.
func dataMatrix(p erp.Prescription) string {
	dm, err := printout.DataMatrix([]printout.Prescription{{PrescriptionID: p.TaskID, AccessCode: p.AccessCode, Medication: p.Medication}})
	if err != nil {
		return ""
	}
	return dm
}

// patientDocument is the Patientenausdruck of an activated prescription: an A4 PDF with its Data
// Matrix code, the patient, the practice and the practitioner as the bundle names them.
func patientDocument(p erp.Prescription, issued time.Time) ([]byte, error) {
	sheet := printout.Sheet{Patient: strings.TrimSpace(p.Patient.Given + " " + p.Patient.Family), BirthDate: p.Patient.Birthday, Issued: issued,
		Prescriptions: []printout.Prescription{{PrescriptionID: p.TaskID, AccessCode: p.AccessCode, Medication: p.Medication}}}
	if b, err := fhir.Parse(p.Bundle, fhir.DefaultLimits); err == nil {
		for _, e := range b.SelectElements("entry") {
			switch r := fhir.ResourceOf(e.SelectElement("resource")); {
			case r == nil:
			case r.Tag == "Organization":
				sheet.Practice = fhir.ChildValue(r, "name")
			case r.Tag == "Practitioner":
				sheet.Practitioner = strings.TrimSpace(fhir.ChildValue(r, "name", "prefix") + " " + fhir.ChildValue(r, "name", "given") + " " + fhir.ChildValue(r, "name", "family"))
			}
		}
	}
	return printout.PDF(sheet)
}

// Tasks answers GET /{tenant}/Task?from=YYYYMMDDHHmm&to=YYYYMMDDHHmm&page=N: the activated
// prescriptions in RED's simplified Bundle (no namespace, <Task> directly in <entry>), ten per
// page. Each Task carries its PrescriptionId and AccessCode, the originating MedicationRequest
// (basedOn), authoredOn (the signing day) and its status as red knows it: ready once activated,
// cancelled once the practice aborted it, in-progress or completed once the Fachdienst named that
// status refusing the practice's $abort (a prescriber cannot read its Tasks at the Fachdienst).
func (s *Service) Tasks(ctx context.Context, q url.Values) (Answer, error) {
	e, err := s.prescriptions(ctx, nil)
	if err != nil {
		return Answer{}, err
	}
	from, err := bound(q, "from")
	if err != nil {
		return Answer{}, err
	}
	to, err := bound(q, "to")
	if err != nil {
		return Answer{}, err
	}
	page := 1
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return Answer{}, fhir.Fail(fhir.CodeValue, "page", "page is a whole number from 1")
		}
	}
	ps, total, err := e.Tasks(ctx, from, to, page)
	if err != nil {
		return Answer{}, err
	}
	b := etree.NewElement("Bundle")
	b.CreateElement("id").CreateAttr("value", "ID")
	b.CreateElement("type").CreateAttr("value", "searchset")
	b.CreateElement("total").CreateAttr("value", strconv.Itoa(total))
	for _, p := range ps {
		t := b.CreateElement("entry").CreateElement("Task")
		t.CreateElement("id").CreateAttr("value", p.TaskID)
		taskID(t, fachdienst.SystemPrescriptionID, p.TaskID)
		taskID(t, fachdienst.SystemAccessCode, p.AccessCode)
		t.CreateElement("basedOn").CreateElement("reference").CreateAttr("value", "MedicationRequest/"+p.ID)
		status := p.TaskStatus
		switch {
		case p.State == erp.Cancelled:
			status = fachdienst.StatusCancelled
		case status == "":
			status = fachdienst.StatusReady
		}
		t.CreateElement("status").CreateAttr("value", string(status))
		t.CreateElement("authoredOn").CreateAttr("value", p.SignedDay)
	}
	return Answer{http.StatusOK, b}, nil
}

// AbortTask answers GET /{tenant}/Task?action=$abort&prescriptionid=…: the practice cancels
// one of its activated prescriptions at the Fachdienst (RED: 200). The Task polling then lists it
// as cancelled.
func (s *Service) AbortTask(ctx context.Context, q url.Values) (Answer, error) {
	id := q.Get("prescriptionid")
	if id == "" {
		return Answer{}, fhir.Fail(fhir.CodeRequired, "prescriptionid", "name the prescription: prescriptionid (its PrescriptionId)")
	}
	e, err := s.prescriptions(ctx, q)
	if err != nil {
		return Answer{}, err
	}
	if _, err := e.Abort(ctx, id); err != nil {
		return Answer{}, err
	}
	return Answer{http.StatusOK, fhir.OperationOutcome(fhir.Issues{{Severity: fhir.SeverityInformation, Code: fhir.CodeInformational,
		Expression: "prescriptionid", Diagnostics: "the prescription is cancelled at the E-Rezept-Fachdienst"}})}, nil
}

func taskID(t *etree.Element, system, value string) {
	id := t.CreateElement("identifier")
	id.CreateElement("use").CreateAttr("value", "official")
	id.CreateElement("system").CreateAttr("value", system)
	id.CreateElement("value").CreateAttr("value", value)
}

// bound reads a polling bound YYYYMMDDHHmm (in Germany); absent: zero (open).
func bound(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("200601021504", v, erp.Berlin)
	if err != nil || len(v) != 12 {
		return time.Time{}, fhir.Fail(fhir.CodeValue, name, "%s is written YYYYMMDDHHmm, e.g. 202612071530", name)
	}
	return t, nil
}
