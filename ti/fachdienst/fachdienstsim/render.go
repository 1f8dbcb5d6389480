package fachdienstsim

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/ti/fachdienst"
)

// instant writes t the way the Fachdienst's examples do: UTC, milliseconds, +00:00.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-07:00") }

// taskView says which parts of a Task a caller sees.
type taskView struct {
	accessCode bool
	secret     bool
	// prescriptionRef: "Binary/<uuid>" for pharmacies, the bare uuid for the prescriber.
	binaryPrefix bool
	confirmation bool // input type 2
	receipt      bool // output type 3
}

// renderTask writes a Task (GEM_ERP_PR_Task) in FHIR element order.
func renderTask(t *taskRecord, v taskView) *etree.Element {
	flow := fachdienst.FlowType(t.FlowType)
	e := etree.NewElement("Task")
	e.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(e.CreateElement("id"), t.ID)
	fhir.SetValue(e.CreateElement("meta").CreateElement("profile"), fachdienst.ProfileTask)

	ext := e.CreateElement("extension")
	ext.CreateAttr("url", fachdienst.ExtPrescriptionType)
	coding(ext.CreateElement("valueCoding"), fachdienst.SystemFlowType, flow.Code(), flow.Display())
	if t.AcceptDate != "" {
		ext := e.CreateElement("extension")
		ext.CreateAttr("url", fachdienst.ExtAcceptDate)
		fhir.SetValue(ext.CreateElement("valueDate"), t.AcceptDate)
	}
	if t.ExpiryDate != "" {
		ext := e.CreateElement("extension")
		ext.CreateAttr("url", fachdienst.ExtExpiryDate)
		fhir.SetValue(ext.CreateElement("valueDate"), t.ExpiryDate)
	}
	if t.LastDispense != nil {
		ext := e.CreateElement("extension")
		ext.CreateAttr("url", fachdienst.ExtLastMedicationDispense)
		fhir.SetValue(ext.CreateElement("valueInstant"), instant(*t.LastDispense))
	}

	identifier(e, fachdienst.SystemPrescriptionID, t.ID)
	if v.accessCode && t.AccessCode != "" {
		identifier(e, fachdienst.SystemAccessCode, t.AccessCode)
	}
	if v.secret && t.Secret != "" {
		identifier(e, fachdienst.SystemSecret, t.Secret)
	}
	fhir.SetValue(e.CreateElement("status"), t.Status)
	fhir.SetValue(e.CreateElement("intent"), "order")
	if t.KVNR != "" {
		id := e.CreateElement("for").CreateElement("identifier")
		system := t.KVNRSystem
		if system == "" {
			system = fachdienst.SystemKVNR
		}
		fhir.SetValue(id.CreateElement("system"), system)
		fhir.SetValue(id.CreateElement("value"), t.KVNR)
	}
	fhir.SetValue(e.CreateElement("authoredOn"), instant(t.AuthoredOn))
	fhir.SetValue(e.CreateElement("lastModified"), instant(t.LastModified))
	pt := e.CreateElement("performerType")
	code, display := flow.PerformerType()
	coding(pt.CreateElement("coding"), fachdienst.SystemOrganizationType, code, display)
	fhir.SetValue(pt.CreateElement("text"), display)
	if t.Owner != "" {
		id := e.CreateElement("owner").CreateElement("identifier")
		fhir.SetValue(id.CreateElement("system"), fachdienst.SystemTelematikID)
		fhir.SetValue(id.CreateElement("value"), t.Owner)
	}
	if t.PrescriptionUUID != "" {
		ref := t.PrescriptionUUID
		if v.binaryPrefix {
			ref = "Binary/" + ref
		}
		documentRef(e, "input", fachdienst.DocumentPrescription, ref)
	}
	if v.confirmation && t.ConfirmationUUID != "" {
		documentRef(e, "input", fachdienst.DocumentPatientConfirmation, t.ConfirmationUUID)
	}
	if v.receipt && t.ReceiptUUID != "" {
		documentRef(e, "output", fachdienst.DocumentReceipt, t.ReceiptUUID)
	}
	return e
}

func coding(c *etree.Element, system, code, display string) {
	fhir.SetValue(c.CreateElement("system"), system)
	fhir.SetValue(c.CreateElement("code"), code)
	if display != "" {
		fhir.SetValue(c.CreateElement("display"), display)
	}
}

func identifier(e *etree.Element, system, value string) {
	id := e.CreateElement("identifier")
	fhir.SetValue(id.CreateElement("use"), "official")
	fhir.SetValue(id.CreateElement("system"), system)
	fhir.SetValue(id.CreateElement("value"), value)
}

func documentRef(e *etree.Element, tag, docType, ref string) {
	in := e.CreateElement(tag)
	coding(in.CreateElement("type").CreateElement("coding"), fachdienst.SystemDocumentType, docType, "")
	fhir.SetValue(in.CreateElement("valueReference").CreateElement("reference"), ref)
}

// bundle starts a Bundle of a type with id, timestamp and (optionally) a self link.
func bundle(id, typ string, at time.Time, self string) *etree.Element {
	b := etree.NewElement("Bundle")
	b.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(b.CreateElement("id"), id)
	fhir.SetValue(b.CreateElement("type"), typ)
	fhir.SetValue(b.CreateElement("timestamp"), instant(at))
	if self != "" {
		link(b, "self", self)
	}
	return b
}

func link(b *etree.Element, relation, url string) {
	l := b.CreateElement("link")
	fhir.SetValue(l.CreateElement("relation"), relation)
	fhir.SetValue(l.CreateElement("url"), url)
}

// addEntry appends an entry; searchMode is "" outside searchsets.
func addEntry(b *etree.Element, fullURL string, res *etree.Element, searchMode string) {
	entry := b.CreateElement("entry")
	fhir.SetValue(entry.CreateElement("fullUrl"), fullURL)
	c := res.Copy()
	c.RemoveAttr("xmlns")
	entry.CreateElement("resource").AddChild(c)
	if searchMode != "" {
		fhir.SetValue(entry.CreateElement("search").CreateElement("mode"), searchMode)
	}
}

// setTotal inserts Bundle.total after type/timestamp, where FHIR puts it.
func setTotal(b *etree.Element, n int) {
	total := etree.NewElement("total")
	fhir.SetValue(total, strconv.Itoa(n))
	at := 0
	for i, c := range b.Child {
		if el, ok := c.(*etree.Element); ok && (el.Tag == "id" || el.Tag == "meta" || el.Tag == "identifier" || el.Tag == "type" || el.Tag == "timestamp") {
			at = i + 1
		}
	}
	b.InsertChildAt(at, total)
}

// prescriptionBinary is the GEM_ERP_PR_Binary holding the signed KBV bundle.
func prescriptionBinary(t *taskRecord) *etree.Element {
	bin := etree.NewElement("Binary")
	fhir.SetValue(bin.CreateElement("id"), t.PrescriptionUUID)
	meta := bin.CreateElement("meta")
	fhir.SetValue(meta.CreateElement("versionId"), "1")
	fhir.SetValue(meta.CreateElement("profile"), fachdienst.ProfileBinary)
	fhir.SetValue(bin.CreateElement("contentType"), "application/pkcs7-mime")
	fhir.SetValue(bin.CreateElement("data"), base64.StdEncoding.EncodeToString(t.Signed))
	return bin
}
