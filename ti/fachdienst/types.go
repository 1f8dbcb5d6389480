package fachdienst

import (
	"net/http"
	"strconv"
)

// Headers of the inner Fachdienst request. The access token's claims are replaced by
// HeaderProfessionOID and HeaderIDNumber.
const (
	// HeaderProfessionOID carries the caller's profession OID (the token claim professionOID),
	// for example [OIDPraxisArzt] or [OIDOeffentlicheApotheke].
	HeaderProfessionOID = "X-Profession-OID"
	// HeaderIDNumber carries the caller's Telematik-ID, or the KVNR of an insured person (the
	// token claim idNummer).
	HeaderIDNumber = "X-ID-Nummer"
	// HeaderAccessCode carries a Task's AccessCode on $activate and $abort (and for
	// representatives of insured persons).
	HeaderAccessCode = "X-AccessCode"
	// HeaderVAUErrorCode is set by the Fachdienst on some errors, for example "brute_force" when an
	// AccessCode or Secret does not match and "invalid_prescription" for a broken signature.
	HeaderVAUErrorCode = "VAU-Error-Code"
	// ContentType is the media type of every FHIR body.
	ContentType = "application/fhir+xml; charset=UTF-8"
)

// Profession OIDs (the professionOID claim of the access token).
const (
	OIDArzt                  = "1.2.276.0.76.4.30"
	OIDZahnarzt              = "1.2.276.0.76.4.31"
	OIDApotheker             = "1.2.276.0.76.4.32"
	OIDVersicherter          = "1.2.276.0.76.4.49"
	OIDPraxisArzt            = "1.2.276.0.76.4.50"
	OIDZahnarztpraxis        = "1.2.276.0.76.4.51"
	OIDPraxisPsychotherapeut = "1.2.276.0.76.4.52"
	OIDKrankenhaus           = "1.2.276.0.76.4.53"
	OIDOeffentlicheApotheke  = "1.2.276.0.76.4.54"
	OIDKrankenhausapotheke   = "1.2.276.0.76.4.55"
	OIDKostentraeger         = "1.2.276.0.76.4.59"
)

// FHIR systems, extensions and profiles of the E-Rezept workflow.
const (
	SystemPrescriptionID   = "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId"
	SystemAccessCode       = "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_AccessCode"
	SystemSecret           = "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_Secret"
	SystemFlowType         = "https://gematik.de/fhir/erp/CodeSystem/GEM_ERP_CS_FlowType"
	SystemOrganizationType = "https://gematik.de/fhir/erp/CodeSystem/GEM_ERP_CS_OrganizationType"
	SystemDocumentType     = "https://gematik.de/fhir/erp/CodeSystem/GEM_ERP_CS_DocumentType"
	SystemTelematikID      = "https://gematik.de/fhir/sid/telematik-id"
	SystemKVNR             = "http://fhir.de/sid/gkv/kvid-10"

	ExtPrescriptionType       = "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_PrescriptionType"
	ExtAcceptDate             = "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_AcceptDate"
	ExtExpiryDate             = "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_ExpiryDate"
	ExtLastMedicationDispense = "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_LastMedicationDispense"
	ExtBeneficiary            = "https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_Beneficiary"

	// ProfileVersion is the workflow profile version the simulator writes (workflow 1.5).
	ProfileVersion = "1.5"
	profileBase    = "https://gematik.de/fhir/erp/StructureDefinition/"
	ProfileTask    = profileBase + "GEM_ERP_PR_Task|" + ProfileVersion
	ProfileBinary  = profileBase + "GEM_ERP_PR_Binary|" + ProfileVersion
	ProfileBundle  = profileBase + "GEM_ERP_PR_Bundle|" + ProfileVersion
	ProfileDigest  = profileBase + "GEM_ERP_PR_Digest|" + ProfileVersion
	ProfileDevice  = profileBase + "GEM_ERP_PR_Device|" + ProfileVersion
	ProfileReceipt = profileBase + "GEM_ERP_PR_Composition|" + ProfileVersion
)

// Document types of Task.input and Task.output (GEM_ERP_CS_DocumentType).
const (
	DocumentPrescription        = "1" // the QES-signed KBV bundle
	DocumentPatientConfirmation = "2" // the Fachdienst-signed copy for the insured person
	DocumentReceipt             = "3" // the receipt of $close
)

// Status is a Task status.
type Status string

// The Task statuses the Fachdienst uses.
const (
	StatusDraft      Status = "draft"
	StatusReady      Status = "ready"
	StatusInProgress Status = "in-progress"
	StatusCompleted  Status = "completed"
	StatusCancelled  Status = "cancelled"
)

// FlowType is the workflow type of a prescription, the first three digits of its PrescriptionId.
type FlowType int

// The flow types the Fachdienst accepts at $create.
const (
	FlowApothekenpflichtig    FlowType = 160 // Muster 16, GKV
	FlowDiGA                  FlowType = 162 // digital health application, GKV
	FlowTRezept               FlowType = 166 // § 3a AMVV (T-Rezept), GKV and PKV
	FlowDirekteZuweisung      FlowType = 169 // direct assignment by the prescriber, GKV
	FlowApothekenpflichtigPKV FlowType = 200 // PKV
	FlowDirekteZuweisungPKV   FlowType = 209 // direct assignment by the prescriber, PKV
)

// Known reports whether the Fachdienst accepts f at $create.
func (f FlowType) Known() bool {
	switch f {
	case FlowApothekenpflichtig, FlowDiGA, FlowTRezept, FlowDirekteZuweisung, FlowApothekenpflichtigPKV, FlowDirekteZuweisungPKV:
		return true
	}
	return false
}

// Code is the three-digit code of f.
func (f FlowType) Code() string { return strconv.Itoa(int(f)) }

// Display is the display text of f in GEM_ERP_CS_FlowType as the Fachdienst writes it.
func (f FlowType) Display() string {
	switch f {
	case FlowApothekenpflichtig:
		return "Muster 16 (Apothekenpflichtige Arzneimittel)"
	case FlowDiGA:
		return "Muster 16 (Digitale Gesundheitsanwendungen)"
	case FlowTRezept:
		return "Arzneimittel nach § 3a AMVV (T-Rezept)"
	case FlowDirekteZuweisung:
		return "Muster 16 (Direkte Zuweisung)"
	case FlowApothekenpflichtigPKV:
		return "PKV (Apothekenpflichtige Arzneimittel)"
	case FlowDirekteZuweisungPKV:
		return "PKV (Direkte Zuweisung)"
	}
	return ""
}

// PerformerType is the organisation type (urn:oid code and display) that redeems prescriptions
// of flow type f: the payor for DiGA, a public pharmacy otherwise.
func (f FlowType) PerformerType() (code, display string) {
	if f == FlowDiGA {
		return "urn:oid:" + OIDKostentraeger, "Kostenträger"
	}
	return "urn:oid:" + OIDOeffentlicheApotheke, "Öffentliche Apotheke"
}

// PKV reports whether f is a flow type for privately insured persons.
func (f FlowType) PKV() bool { return f == FlowApothekenpflichtigPKV || f == FlowDirekteZuweisungPKV }

// DirectAssignment reports whether the prescriber assigns prescriptions of f to a pharmacy.
func (f FlowType) DirectAssignment() bool {
	return f == FlowDirekteZuweisung || f == FlowDirekteZuweisungPKV
}

// Identity is who calls the Fachdienst: the claims of the access token the real Fachdienst reads.
type Identity struct {
	ProfessionOID string // e.g. OIDPraxisArzt, OIDOeffentlicheApotheke, OIDVersicherter
	ID            string // Telematik-ID, or the KVNR of an insured person
}

// IdentityFrom reads the identity headers of a request.
func IdentityFrom(h http.Header) Identity {
	return Identity{ProfessionOID: h.Get(HeaderProfessionOID), ID: h.Get(HeaderIDNumber)}
}

// Set writes the identity headers.
func (id Identity) Set(h http.Header) {
	if id.ProfessionOID != "" {
		h.Set(HeaderProfessionOID, id.ProfessionOID)
	}
	if id.ID != "" {
		h.Set(HeaderIDNumber, id.ID)
	}
}

// Prescriber reports whether the identity may create, activate and (with the AccessCode) abort
// Tasks: doctors, dentists, psychotherapists' practices and hospitals.
func (id Identity) Prescriber() bool {
	switch id.ProfessionOID {
	case OIDArzt, OIDZahnarzt, OIDPraxisArzt, OIDZahnarztpraxis, OIDPraxisPsychotherapeut, OIDKrankenhaus:
		return true
	}
	return false
}

// Pharmacy reports whether the identity is a public or hospital pharmacy, which accepts, rejects,
// dispenses and closes Tasks.
func (id Identity) Pharmacy() bool {
	return id.ProfessionOID == OIDOeffentlicheApotheke || id.ProfessionOID == OIDKrankenhausapotheke
}

// Payor reports whether the identity is a Kostenträger, which redeems DiGA prescriptions.
func (id Identity) Payor() bool { return id.ProfessionOID == OIDKostentraeger }

// Insured reports whether the identity is an insured person; ID is then the KVNR.
func (id Identity) Insured() bool { return id.ProfessionOID == OIDVersicherter }

// Redeems reports whether the identity may accept, reject, dispense and close Tasks of flow type
// f: the payor for DiGA, pharmacies for everything else.
func (id Identity) Redeems(f FlowType) bool {
	if f == FlowDiGA {
		return id.Payor()
	}
	return id.Pharmacy()
}
