package fachdienstsim

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
)

// handedOverDate is the only form of MedicationDispense.whenHandedOver the workflow profile
// allows (constraint workflow-abgabeDatumsFormat).
var handedOverDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// dispensesFrom reads the MedicationDispenses of a $dispense or $close body (Parameters with
// rxDispensation parts; a single MedicationDispense or a Bundle of them as in workflow < 1.4),
// checks them against the Task and the caller, and gives them their Fachdienst ids.
func (s *Simulator) dispensesFrom(body *etree.Element, t *taskRecord, who fachdienst.Identity) ([]dispenseRecord, error) {
	type pair struct{ md, med *etree.Element }
	var pairs []pair
	invalid := func(diag string) error { return failDiag(http.StatusBadRequest, "Invalid MedicationDispense", diag) }
	switch body.Tag {
	case "Parameters":
		for _, p := range body.SelectElements("parameter") {
			if name := fhir.ChildValue(p, "name"); name != "rxDispensation" {
				return nil, failDiag(http.StatusBadRequest, "Error during request parsing.", "unexpected parameter "+name)
			}
			var pr pair
			for _, part := range p.SelectElements("part") {
				res := fhir.ResourceOf(part.SelectElement("resource"))
				switch fhir.ChildValue(part, "name") {
				case "medicationDispense":
					if res == nil || res.Tag != "MedicationDispense" {
						return nil, invalid("the part medicationDispense holds no MedicationDispense")
					}
					pr.md = res
				case "medication":
					if res == nil || res.Tag != "Medication" {
						return nil, invalid("the part medication holds no Medication")
					}
					pr.med = res
				}
			}
			if pr.md == nil {
				return nil, invalid("rxDispensation without medicationDispense")
			}
			if pr.med == nil && t.FlowType != int(fachdienst.FlowDiGA) {
				return nil, invalid("rxDispensation without medication")
			}
			pairs = append(pairs, pr)
		}
	case "MedicationDispense":
		pairs = append(pairs, pair{md: body})
	case "Bundle":
		for _, entry := range body.SelectElements("entry") {
			if res := fhir.ResourceOf(entry.SelectElement("resource")); res != nil && res.Tag == "MedicationDispense" {
				pairs = append(pairs, pair{md: res})
			}
		}
	default:
		return nil, fail(http.StatusBadRequest, "Unsupported resource type in request body: "+body.Tag)
	}
	if len(pairs) == 0 {
		return nil, fail(http.StatusBadRequest, "Missing MedicationDispense in the request body")
	}
	out := make([]dispenseRecord, 0, len(pairs))
	for i, p := range pairs {
		rx := ""
		for _, id := range p.md.SelectElements("identifier") {
			if fhir.ChildValue(id, "system") == fachdienst.SystemPrescriptionID {
				rx = fhir.ChildValue(id, "value")
			}
		}
		if rx != t.ID {
			return nil, fail(http.StatusBadRequest, "Prescription ID in MedicationDispense does not match the one in the task")
		}
		if st := fhir.ChildValue(p.md, "status"); st != "completed" {
			return nil, invalid("MedicationDispense.status must be completed")
		}
		handedOver := fhir.ChildValue(p.md, "whenHandedOver")
		if !handedOverDate.MatchString(handedOver) {
			return nil, invalid("MedicationDispense.whenHandedOver must be a date (YYYY-MM-DD)")
		}
		if fhir.ChildValue(p.md, "subject", "identifier", "value") != t.KVNR {
			return nil, fail(http.StatusBadRequest, "KVNR in MedicationDispense does not match the one in the task")
		}
		if fhir.ChildValue(p.md, "performer", "actor", "identifier", "value") != who.ID {
			return nil, fail(http.StatusBadRequest, "Telematik-ID in MedicationDispense does not match the one in the access token.")
		}
		md := p.md.Copy()
		md.RemoveAttr("xmlns")
		id := t.ID
		if i > 0 {
			id = fmt.Sprintf("%s-%d", t.ID, i)
		}
		setID(md, id)
		rec := dispenseRecord{ID: id, KVNR: t.KVNR, WhenHandedOver: handedOver}
		if p.med != nil {
			medID, err := s.uuid() // new ids keep GET /MedicationDispense unambiguous
			if err != nil {
				return nil, err
			}
			med := p.med.Copy()
			med.RemoveAttr("xmlns")
			setID(med, medID)
			if ref := md.SelectElement("medicationReference"); ref != nil {
				for _, c := range ref.ChildElements() {
					ref.RemoveChild(c)
				}
				fhir.SetValue(ref.CreateElement("reference"), "Medication/"+medID)
			}
			rec.MedicationID, rec.Medication = medID, fhir.Marshal(med)
		}
		rec.XML = fhir.Marshal(md)
		out = append(out, rec)
	}
	return out, nil
}

// setID sets a resource's id, which comes first.
func setID(res *etree.Element, id string) {
	if e := res.SelectElement("id"); e != nil {
		fhir.SetValue(e, id)
		return
	}
	e := etree.NewElement("id")
	fhir.SetValue(e, id)
	res.InsertChildAt(0, e)
}

// receipt builds the signed receipt Bundle (GEM_ERP_PR_Bundle) of a closed Task.
func (s *Simulator) receipt(r *http.Request, t *taskRecord, telematikID string, now time.Time) (*etree.Element, error) {
	var ids [3]string
	for i := range ids {
		var err error
		if ids[i], err = s.uuid(); err != nil {
			return nil, err
		}
	}
	compID, deviceID, digestID := ids[0], ids[1], ids[2]
	b := etree.NewElement("Bundle")
	b.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(b.CreateElement("id"), t.ReceiptUUID)
	fhir.SetValue(b.CreateElement("meta").CreateElement("profile"), fachdienst.ProfileBundle)
	bid := b.CreateElement("identifier")
	fhir.SetValue(bid.CreateElement("system"), fachdienst.SystemPrescriptionID)
	fhir.SetValue(bid.CreateElement("value"), t.ID)
	fhir.SetValue(b.CreateElement("type"), "document")
	fhir.SetValue(b.CreateElement("timestamp"), instant(now))
	link(b, "self", baseURL(r)+"/Task/"+t.ID+"/$close/")

	comp := etree.NewElement("Composition")
	fhir.SetValue(comp.CreateElement("id"), compID)
	fhir.SetValue(comp.CreateElement("meta").CreateElement("profile"), fachdienst.ProfileReceipt)
	ext := comp.CreateElement("extension")
	ext.CreateAttr("url", fachdienst.ExtBeneficiary)
	vi := ext.CreateElement("valueIdentifier")
	fhir.SetValue(vi.CreateElement("system"), fachdienst.SystemTelematikID)
	fhir.SetValue(vi.CreateElement("value"), telematikID)
	fhir.SetValue(comp.CreateElement("status"), "final")
	coding(comp.CreateElement("type").CreateElement("coding"), fachdienst.SystemDocumentType, fachdienst.DocumentReceipt, "Receipt")
	fhir.SetValue(comp.CreateElement("date"), instant(now))
	fhir.SetValue(comp.CreateElement("author").CreateElement("reference"), "urn:uuid:"+deviceID)
	fhir.SetValue(comp.CreateElement("title"), "Quittung")
	period := comp.CreateElement("event").CreateElement("period")
	start := t.AcceptedAt
	if start.IsZero() {
		start = t.LastModified
	}
	fhir.SetValue(period.CreateElement("start"), instant(start))
	fhir.SetValue(period.CreateElement("end"), instant(now))
	fhir.SetValue(comp.CreateElement("section").CreateElement("entry").CreateElement("reference"), "urn:uuid:"+digestID)
	addEntry(b, "urn:uuid:"+compID, comp, "")

	dev := etree.NewElement("Device")
	fhir.SetValue(dev.CreateElement("id"), deviceID)
	fhir.SetValue(dev.CreateElement("meta").CreateElement("profile"), fachdienst.ProfileDevice)
	fhir.SetValue(dev.CreateElement("status"), "active")
	fhir.SetValue(dev.CreateElement("serialNumber"), simulatorVersion)
	dn := dev.CreateElement("deviceName")
	fhir.SetValue(dn.CreateElement("name"), "E-Rezept-Fachdienst")
	fhir.SetValue(dn.CreateElement("type"), "user-friendly-name")
	fhir.SetValue(dev.CreateElement("version").CreateElement("value"), simulatorVersion)
	contact := dev.CreateElement("contact")
	fhir.SetValue(contact.CreateElement("system"), "email")
	fhir.SetValue(contact.CreateElement("value"), "betrieb@gematik.de")
	addEntry(b, "urn:uuid:"+deviceID, dev, "")

	digest := etree.NewElement("Binary")
	fhir.SetValue(digest.CreateElement("id"), digestID)
	meta := digest.CreateElement("meta")
	fhir.SetValue(meta.CreateElement("versionId"), "1")
	fhir.SetValue(meta.CreateElement("profile"), fachdienst.ProfileDigest)
	fhir.SetValue(digest.CreateElement("contentType"), "application/octet-stream")
	fhir.SetValue(digest.CreateElement("data"), base64.StdEncoding.EncodeToString(t.Digest))
	addEntry(b, "urn:uuid:"+digestID, digest, "")

	// CAdES-BES enveloping signature (ID.FD.SIG) over the receipt without its signature.
	sig, err := cms.Sign(fhir.Marshal(b), s.cfg.Certificate, s.cfg.Signer, false, now)
	if err != nil {
		return nil, fmt.Errorf("fachdienstsim: signing the receipt: %w", err)
	}
	se := b.CreateElement("signature")
	coding(se.CreateElement("type"), "urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.1", "")
	fhir.SetValue(se.CreateElement("when"), instant(now))
	fhir.SetValue(se.CreateElement("who").CreateElement("reference"), "urn:uuid:"+deviceID)
	fhir.SetValue(se.CreateElement("sigFormat"), "application/pkcs7-mime")
	fhir.SetValue(se.CreateElement("data"), base64.StdEncoding.EncodeToString(sig))
	return b, nil
}

// simulatorVersion is what the receipt's Device says.
const simulatorVersion = "red-fachdienstsim-1"

// listDispenses is GET /MedicationDispense[/{id}] for insured persons.
func (s *Simulator) listDispenses(w http.ResponseWriter, r *http.Request, who fachdienst.Identity, id string) error {
	if !who.Insured() {
		return forbiddenRole(who)
	}
	q := r.URL.Query()
	var preds []func(dispenseRecord) bool
	for name, values := range q {
		for _, v := range values {
			switch name {
			case "identifier":
				want := v
				if i := strings.LastIndex(v, "|"); i >= 0 {
					if sys := v[:i]; sys != "" && sys != fachdienst.SystemPrescriptionID {
						return failDiag(http.StatusBadRequest, "Invalid search parameter identifier", "unknown system "+sys)
					}
					want = v[i+1:]
				}
				preds = append(preds, func(d dispenseRecord) bool { return d.ID == want || strings.HasPrefix(d.ID, want+"-") })
			case "whenhandedover":
				cmp, err := s.dateFilter(v)
				if err != nil {
					return failDiag(http.StatusBadRequest, "Invalid search parameter whenhandedover", err.Error())
				}
				preds = append(preds, func(d dispenseRecord) bool { return cmp(s.dayStart(d.WhenHandedOver)) })
			case "_count", "__offset", "_sort", "_format":
			default:
				return failDiag(http.StatusBadRequest, "Unknown search parameter", name)
			}
		}
	}
	s.mu.Lock()
	var found []dispenseRecord
	for _, t := range s.tasks {
		if t.KVNR != who.ID {
			continue
		}
	next:
		for _, d := range t.Dispenses {
			if id != "" && d.ID != id {
				continue
			}
			for _, p := range preds {
				if !p(d) {
					continue next
				}
			}
			found = append(found, d)
		}
	}
	s.mu.Unlock()
	if id != "" && len(found) == 0 {
		return fail(http.StatusNotFound, "MedicationDispense not found")
	}
	desc := q.Get("_sort") == "-whenhandedover"
	sortResults(found, desc, func(a, b dispenseRecord) int { return strings.Compare(a.WhenHandedOver, b.WhenHandedOver) }, func(d dispenseRecord) string { return d.ID })
	base := baseURL(r)
	self := base + "/MedicationDispense"
	if id != "" {
		self += "/" + id
	}
	page, links, err := paginate(len(found), q, self)
	if err != nil {
		return err
	}
	b, err := s.searchset(len(found), links, s.now())
	if err != nil {
		return err
	}
	for _, d := range found[page[0]:page[1]] {
		md, err := fhir.Parse(d.XML, fhir.DefaultLimits)
		if err != nil {
			return err
		}
		addEntry(b, base+"/MedicationDispense/"+d.ID, md, "match")
		if len(d.Medication) > 0 {
			med, err := fhir.Parse(d.Medication, fhir.DefaultLimits)
			if err != nil {
				return err
			}
			addEntry(b, base+"/Medication/"+d.MedicationID, med, "include")
		}
	}
	writeXML(w, http.StatusOK, b)
	return nil
}
