package fachdienst

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Task is an E-Rezept Task as the Fachdienst returns it. Which secrets it carries depends on who
// asked: the prescriber sees the AccessCode, the accepting pharmacy also the Secret.
type Task struct {
	ID                     string // the PrescriptionId, e.g. 160.000.000.000.001.54
	FlowType               FlowType
	Status                 Status
	AccessCode             string // 64 hex digits
	Secret                 string // 64 hex digits, from $accept until $reject
	KVNR                   string // Task.for, set at $activate
	Owner                  string // Telematik-ID of the pharmacy that accepted the Task
	PerformerType          string // urn:oid of the organisation type that redeems the Task
	AuthoredOn             time.Time
	LastModified           time.Time
	AcceptDate             string    // YYYY-MM-DD: the last day the Task may be redeemed at the payor's cost
	ExpiryDate             string    // YYYY-MM-DD: the last day the Task may be redeemed at all
	LastMedicationDispense time.Time // zero when there was none
	Prescription           string    // reference of input type 1, the signed KBV bundle
	PatientConfirmation    string    // reference of input type 2
	Receipt                string    // reference of output type 3
	Warning                string    // the Warning header of a 252 answer to $activate
	XML                    []byte    // the Task element as received, as a standalone fragment
}

// Accepted is the answer to $accept (and to a secret recovery): the Task in progress, its Secret
// and the prescription as the prescriber signed it.
type Accepted struct {
	Task   Task
	Secret string
	Bundle []byte // the CMS (PKCS#7) signed KBV bundle, DER
}

// TaskDetails is the answer to GET /Task/{id}: the Task and what the caller may see with it.
type TaskDetails struct {
	Task                Task
	Prescription        []byte   // signed KBV bundle (pharmacy secret recovery with ?ac=)
	PatientConfirmation []byte   // the KBV bundle as XML (insured persons)
	Receipt             *Receipt // the receipt of a completed Task (pharmacy with ?secret=)
}

// Receipt is the Fachdienst's signed receipt of a closed Task (a GEM_ERP_PR_Bundle document).
type Receipt struct {
	PrescriptionID string
	Beneficiary    string    // Telematik-ID of the pharmacy that closed the Task
	Start, End     time.Time // when the Task was accepted and closed
	Digest         []byte    // SHA-256 of the signed prescription
	Signature      []byte    // CAdES-BES enveloping signature (CMS, DER) of the Fachdienst over the receipt
	XML            []byte    // the receipt Bundle as received
}

// Communication is a message between insured person and pharmacy held by the Fachdienst.
type Communication struct {
	ID        string
	Profile   string // e.g. ...GEM_ERP_PR_Communication_DispReq|1.5
	BasedOn   string // Task/<id> or Task/<id>/$accept?ac=<code>
	TaskID    string // the PrescriptionId in BasedOn
	Sender    string // Telematik-ID or KVNR
	Recipient string // Telematik-ID or KVNR
	Sent      time.Time
	Received  time.Time // zero until the recipient fetched it
	Payload   string    // payload.contentString
	XML       []byte
}

// MedicationDispense is a dispensation recorded by $dispense or $close.
type MedicationDispense struct {
	ID                  string
	PrescriptionID      string
	KVNR                string
	Performer           string // Telematik-ID
	WhenHandedOver      string // YYYY-MM-DD
	MedicationReference string
	XML                 []byte
	Medication          []byte // the referenced Medication, when the answer included it
}

// ParseTask reads a Task element.
func ParseTask(e *etree.Element) (Task, error) {
	if e == nil || e.Tag != "Task" {
		return Task{}, fmt.Errorf("fachdienst: expected a Task")
	}
	t := Task{
		ID:     fhir.ChildValue(e, "id"),
		Status: Status(fhir.ChildValue(e, "status")),
		XML:    fhir.Marshal(e),
	}
	for _, ext := range e.SelectElements("extension") {
		switch ext.SelectAttrValue("url", "") {
		case ExtPrescriptionType:
			code, _ := strconv.Atoi(fhir.ChildValue(ext, "valueCoding", "code"))
			t.FlowType = FlowType(code)
		case ExtAcceptDate:
			t.AcceptDate = fhir.ChildValue(ext, "valueDate")
		case ExtExpiryDate:
			t.ExpiryDate = fhir.ChildValue(ext, "valueDate")
		case ExtLastMedicationDispense:
			t.LastMedicationDispense = parseTime(fhir.ChildValue(ext, "valueInstant"))
		}
	}
	for _, id := range e.SelectElements("identifier") {
		v := fhir.ChildValue(id, "value")
		switch fhir.ChildValue(id, "system") {
		case SystemPrescriptionID:
			if t.ID == "" {
				t.ID = v
			}
		case SystemAccessCode:
			t.AccessCode = v
		case SystemSecret:
			t.Secret = v
		}
	}
	if t.FlowType == 0 && len(t.ID) >= 3 {
		code, _ := strconv.Atoi(t.ID[:3])
		t.FlowType = FlowType(code)
	}
	t.KVNR = fhir.ChildValue(e, "for", "identifier", "value")
	t.Owner = fhir.ChildValue(e, "owner", "identifier", "value")
	t.PerformerType = fhir.ChildValue(e, "performerType", "coding", "code")
	t.AuthoredOn = parseTime(fhir.ChildValue(e, "authoredOn"))
	t.LastModified = parseTime(fhir.ChildValue(e, "lastModified"))
	for _, in := range e.SelectElements("input") {
		ref := fhir.ChildValue(in, "valueReference", "reference")
		switch fhir.ChildValue(in, "type", "coding", "code") {
		case DocumentPrescription:
			t.Prescription = ref
		case DocumentPatientConfirmation:
			t.PatientConfirmation = ref
		}
	}
	for _, out := range e.SelectElements("output") {
		if fhir.ChildValue(out, "type", "coding", "code") == DocumentReceipt {
			t.Receipt = fhir.ChildValue(out, "valueReference", "reference")
		}
	}
	if t.ID == "" {
		return Task{}, fmt.Errorf("fachdienst: the Task has no id")
	}
	return t, nil
}

// ParseReceipt reads a receipt Bundle.
func ParseReceipt(e *etree.Element) (Receipt, error) {
	if e == nil || e.Tag != "Bundle" {
		return Receipt{}, fmt.Errorf("fachdienst: expected a receipt Bundle")
	}
	r := Receipt{XML: fhir.Marshal(e)}
	if fhir.ChildValue(e, "identifier", "system") == SystemPrescriptionID {
		r.PrescriptionID = fhir.ChildValue(e, "identifier", "value")
	}
	for _, res := range bundleResources(e) {
		switch res.Tag {
		case "Composition":
			for _, ext := range res.SelectElements("extension") {
				if ext.SelectAttrValue("url", "") == ExtBeneficiary {
					r.Beneficiary = fhir.ChildValue(ext, "valueIdentifier", "value")
				}
			}
			r.Start = parseTime(fhir.ChildValue(res, "event", "period", "start"))
			r.End = parseTime(fhir.ChildValue(res, "event", "period", "end"))
		case "Binary":
			if d, err := base64.StdEncoding.DecodeString(fhir.ChildValue(res, "data")); err == nil {
				r.Digest = d
			}
		}
	}
	if sig := fhir.ChildValue(e, "signature", "data"); sig != "" {
		d, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			return Receipt{}, fmt.Errorf("fachdienst: the receipt's signature is not base64")
		}
		r.Signature = d
	}
	if r.PrescriptionID == "" {
		return Receipt{}, fmt.Errorf("fachdienst: the receipt carries no PrescriptionId")
	}
	return r, nil
}

// ParseCommunication reads a Communication element.
func ParseCommunication(e *etree.Element) (Communication, error) {
	if e == nil || e.Tag != "Communication" {
		return Communication{}, fmt.Errorf("fachdienst: expected a Communication")
	}
	c := Communication{
		ID:        fhir.ChildValue(e, "id"),
		Profile:   fhir.ChildValue(e, "meta", "profile"),
		BasedOn:   fhir.ChildValue(e, "basedOn", "reference"),
		Sender:    fhir.ChildValue(e, "sender", "identifier", "value"),
		Recipient: fhir.ChildValue(e, "recipient", "identifier", "value"),
		Sent:      parseTime(fhir.ChildValue(e, "sent")),
		Received:  parseTime(fhir.ChildValue(e, "received")),
		Payload:   fhir.ChildValue(e, "payload", "contentString"),
		XML:       fhir.Marshal(e),
	}
	c.TaskID = TaskIDOf(c.BasedOn)
	return c, nil
}

// TaskIDOf returns the Task id in a reference like Task/<id>, Task/<id>/$accept?ac=… or a full URL.
func TaskIDOf(ref string) string {
	i := strings.Index(ref, "Task/")
	if i < 0 {
		return ""
	}
	id := ref[i+len("Task/"):]
	if j := strings.IndexAny(id, "/?"); j >= 0 {
		id = id[:j]
	}
	return id
}

// ParseMedicationDispense reads a MedicationDispense element.
func ParseMedicationDispense(e *etree.Element) (MedicationDispense, error) {
	if e == nil || e.Tag != "MedicationDispense" {
		return MedicationDispense{}, fmt.Errorf("fachdienst: expected a MedicationDispense")
	}
	md := MedicationDispense{
		ID:                  fhir.ChildValue(e, "id"),
		KVNR:                fhir.ChildValue(e, "subject", "identifier", "value"),
		Performer:           fhir.ChildValue(e, "performer", "actor", "identifier", "value"),
		WhenHandedOver:      fhir.ChildValue(e, "whenHandedOver"),
		MedicationReference: fhir.ChildValue(e, "medicationReference", "reference"),
		XML:                 fhir.Marshal(e),
	}
	for _, id := range e.SelectElements("identifier") {
		if fhir.ChildValue(id, "system") == SystemPrescriptionID {
			md.PrescriptionID = fhir.ChildValue(id, "value")
		}
	}
	return md, nil
}

// bundleResources returns the resources of a Bundle's entries in order.
func bundleResources(b *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, entry := range b.SelectElements("entry") {
		if r := fhir.ResourceOf(entry.SelectElement("resource")); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// parseTime reads a FHIR date, dateTime or instant; it returns the zero time for "" or nonsense.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// NewTask is a Task element (FHIR namespace) with its id and its PrescriptionId identifier, as
// the E-Rezept-Fachdienst writes them, for the caller to complete.
func NewTask(prescriptionID string) *etree.Element {
	t := etree.NewElement("Task")
	t.CreateAttr("xmlns", fhir.Namespace)
	fhir.SetValue(t.CreateElement("id"), prescriptionID)
	idn := t.CreateElement("identifier")
	fhir.SetValue(idn.CreateElement("use"), "official")
	fhir.SetValue(idn.CreateElement("system"), SystemPrescriptionID)
	fhir.SetValue(idn.CreateElement("value"), prescriptionID)
	return t
}
