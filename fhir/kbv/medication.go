package kbv

import (
	"math"
	"regexp"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
)

// Medication: KBV_PR_AW_Medikament (a finished product with PZN, or a Rezeptur described by text).
// MedicationStatement: KBV_PR_AW_Dauermedikation (long-term medication).
// MedicationRequest: KBV_PR_AW_Verordnung_Arzneimittel (a historical drug prescription, not the
// e-prescription). Resources claiming other profiles (the E-Rezept's KBV_PR_ERP_*) get only the
// rules every resource of their type meets.

func init() {
	register("Medication", medication)
	register("MedicationStatement", medicationStatement)
	register("MedicationRequest", medicationRequest)
}

const (
	pznSystem          = "http://fhir.de/CodeSystem/ifa/pzn"
	darreichungsformCS = kbvCS + "KBV_CS_SFHIR_KBV_DARREICHUNGSFORM"
)

var (
	// darreichungsformen is the KBV key table KBV_CS_SFHIR_KBV_DARREICHUNGSFORM, version 1.06
	// (the version the KBV's AWS validation service ships).
	darreichungsformen = codes(
		"AEO", "AMP", "APA", "ASN", "ASO", "ATO", "ATR", "AUB", "AUC", "AUG", "AUS", "BAD", "BAL", "BAN", "BEU",
		"BIN", "BON", "BPL", "BRE", "BTA", "CRE", "DFL", "DIL", "DIS", "DKA", "DOS", "DRA", "DRM", "DSC", "DSS",
		"EDP", "EIN", "ELE", "ELI", "EMU", "ESS", "ESU", "EXT", "FBE", "FBW", "FDA", "FER", "FET", "FLA", "FLE",
		"FLU", "FMR", "FOL", "FRB", "FSE", "FTA", "GEL", "GLO", "GMR", "GPA", "GRA", "GSE", "GUL", "HAS", "HKP",
		"HPI", "HVW", "IFA", "IFB", "IFF", "IFK", "IFL", "IFS", "IHA", "IHP", "IIL", "IKA", "ILO", "IMP", "INF",
		"INH", "INI", "INL", "INS", "IST", "ISU", "IUP", "KAN", "KAP", "KAT", "KDA", "KEG", "KER", "KGU", "KKS",
		"KLI", "KLT", "KMP", "KMR", "KOD", "KOM", "KON", "KPG", "KRI", "KSS", "KSU", "KTA", "LAN", "LII", "LIQ",
		"LOE", "LOT", "LSE", "LTA", "LUP", "LUT", "MIL", "MIX", "MRG", "MRP", "MTA", "MUW", "NAG", "NAO", "NAS",
		"NAW", "NDS", "NSA", "NTR", "OCU", "OEL", "OHT", "OVU", "PAM", "PAS", "PEL", "PEN", "PER", "PFL", "PFT",
		"PHI", "PIF", "PII", "PIJ", "PIK", "PLE", "PLF", "PLG", "PLH", "PLI", "PLK", "PPL", "PRS", "PSE", "PST",
		"PUD", "PUL", "RED", "REK", "RET", "RGR", "RKA", "RSC", "RUT", "SAF", "SAL", "SAM", "SCH", "SEI", "SHA",
		"SIR", "SLZ", "SMF", "SMT", "SMU", "SPA", "SPF", "SPL", "SPR", "SRI", "SSU", "STA", "STB", "STI", "STR",
		"SUB", "SUP", "SUS", "SUT", "SUV", "SWA", "TAB", "TAE", "TAM", "TEE", "TEI", "TES", "TIN", "TKA", "TMR",
		"TON", "TPN", "TPO", "TRA", "TRI", "TRO", "TRS", "TRT", "TSA", "TSS", "TST", "TTR", "TUB", "TUE", "TUP",
		"UTA", "VAL", "VAR", "VCR", "VER", "VGE", "VKA", "VLI", "VOV", "VST", "VSU", "VTA", "WAT", "WGA", "WKA",
		"WKM", "WUE", "XDG", "XDS", "XFE", "XGM", "XHA", "XHS", "XNC", "XPK", "XTC", "ZAM", "ZBU", "ZCR", "ZGE",
		"ZKA", "ZPA",
	)
	// darreichungsformShape is what codes of later versions of the key table look like.
	darreichungsformShape = regexp.MustCompile(`^[A-Z]{3}$`)

	medicationStatementStatus = codes("active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken")
	medicationRequestStatus   = codes("active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown")
	medicationRequestIntent   = codes("proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option")
)

func medication(c *Cursor) {
	_, foreign := pickProfile(c, "KBV_PR_AW_Medikament")
	code := c.One("code")
	if foreign {
		for _, coding := range code.All("coding") {
			if coding.One("system").Value() == pznSystem {
				checkPZN(coding.One("code"))
			}
		}
		return
	}

	c.Forbid("identifier", "status", "manufacturer", "ingredient", "batch")
	c.Max("contained", 1)

	c.Require("code")
	if pznCoding := code.One("coding"); pznCoding.Exists() {
		pznCoding.Coding(pznSystem, nil)
		pznCoding.One("code").NotEmpty()
		if pznCoding.One("system").Value() == pznSystem {
			checkPZN(pznCoding.One("code"))
		}
	}
	code.Require("text")
	if text := code.One("text"); text.Exists() {
		text.NotEmpty()
		text.MaxLen(50)
	}

	if form := c.One("form"); form.Exists() {
		form.Require("coding")
		coding := form.One("coding")
		coding.Coding(darreichungsformCS, nil)
		if cd := coding.One("code"); cd.Exists() && coding.One("system").Value() == darreichungsformCS && !darreichungsformen[cd.Value()] {
			if darreichungsformShape.MatchString(cd.Value()) {
				cd.Warnf(fhir.CodeValue, "code %q is not in version 1.06 of %s; red stores it as given", cd.Value(), darreichungsformCS)
			} else {
				cd.Errorf(fhir.CodeValue, "code %q is not in %s", cd.Value(), darreichungsformCS)
			}
		}
	}

	if amount := c.One("amount"); amount.Exists() {
		amount.Require("numerator", "denominator")
		if num := amount.One("numerator"); num.Exists() {
			num.Forbid("comparator")
			num.Require("value", "unit")
			positiveDecimal(num.One("value"), "the package size")
			num.One("unit").NotEmpty()
			num.One("unit").MaxLen(12)
			fixedValue(num.One("system"), ucum, "the unit is a UCUM unit")
		}
		if den := amount.One("denominator"); den.Exists() {
			den.Forbid("comparator")
			den.Require("value")
			if v, ok := decimalValue(den.One("value")); ok && v != 1 {
				den.One("value").Errorf(fhir.CodeValue, "the denominator of the package size is 1")
			}
		}
	}
}

// checkPZN checks a PZN's format and check digit.
func checkPZN(c *Cursor) {
	if !c.Exists() || c.Value() == "" {
		return
	}
	if err := ident.PZN(c.Value()); err != nil {
		c.Errorf(fhir.CodeValue, "%s", err.Error())
	}
}

// positiveDecimal reports a present decimal that is not above zero; what names the quantity.
func positiveDecimal(c *Cursor, what string) {
	if v, ok := decimalValue(c); ok && v <= 0 {
		c.Errorf(fhir.CodeValue, "%s must be greater than zero", what)
	}
}

func medicationStatement(c *Cursor) {
	_, foreign := pickProfile(c, "KBV_PR_AW_Dauermedikation")
	c.Require("status", "subject")
	status := c.One("status")
	codeIn(status, medicationStatementStatus, "medication statement status")
	refTo(c.One("subject"), "Patient")
	refTo(c.One("medicationReference"), "Medication")
	if foreign {
		notFuture(c.One("effectiveDateTime"), false)
		c.One("effectivePeriod").Period()
		return
	}

	c.Forbid("identifier", "basedOn", "partOf", "statusReason", "category", "context", "informationSource",
		"derivedFrom", "reasonCode", "reasonReference", "dosage", "medicationCodeableConcept", "effectiveDateTime")
	if c.Count("medicationCodeableConcept") == 0 {
		c.Require("medicationReference")
	}
	if e := extensionOnce(c, extAdditionalComment, "beschreibung_der_Verordnung", false); e.Exists() {
		extValue(e, "valueString").NotEmpty()
	}
	if p := c.One("effectivePeriod"); p.Exists() {
		p.Require("start")
		if status.Value() == "intended" {
			p.Period() // planned: may start in the future
		} else {
			periodPast(p, true)
		}
	}
	singleNote(c)
}

// singleNote checks the profiles' single note: text only, no author and no time.
func singleNote(c *Cursor) {
	if n := c.One("note"); n.Exists() { // One reports a second note
		n.Forbid("authorString", "authorReference", "time")
		n.Require("text")
		n.One("text").NotEmpty()
	}
}

func medicationRequest(c *Cursor) {
	_, foreign := pickProfile(c, "KBV_PR_AW_Verordnung_Arzneimittel")
	c.Require("status", "intent", "subject")
	refTo(c.One("subject"), "Patient")
	refTo(c.One("medicationReference"), "Medication")
	notFuture(c.One("authoredOn"), false)
	if foreign {
		codeIn(c.One("status"), medicationRequestStatus, "medication request status")
		codeIn(c.One("intent"), medicationRequestIntent, "medication request intent")
		return
	}

	fixedValue(c.One("status"), "active", "a prescription in the patient file has status active")
	fixedValue(c.One("intent"), "order", "a prescription is an order")
	c.Forbid("identifier", "statusReason", "category", "priority", "doNotPerform", "reportedBoolean",
		"reportedReference", "encounter", "supportingInformation", "performer", "performerType", "recorder",
		"reasonCode", "reasonReference", "instantiatesCanonical", "instantiatesUri", "basedOn", "groupIdentifier",
		"courseOfTherapyType", "insurance", "priorPrescription", "detectedIssue", "eventHistory",
		"medicationCodeableConcept")
	if c.Count("medicationCodeableConcept") == 0 {
		c.Require("medicationReference")
	}
	c.Require("authoredOn")
	requiredRef(c, "requester", "Practitioner")
	singleNote(c)

	if d := c.One("dosageInstruction"); d.Exists() {
		d.Forbid("sequence", "additionalInstruction", "timing", "asNeededBoolean", "asNeededCodeableConcept", "site",
			"route", "method", "doseAndRate", "maxDosePerPeriod", "maxDosePerAdministration", "maxDosePerLifetime")
		d.One("text").NotEmpty()
		d.One("patientInstruction").NotEmpty()
	}

	if dr := c.One("dispenseRequest"); dr.Exists() {
		dr.Forbid("initialFill", "dispenseInterval", "validityPeriod", "numberOfRepeatsAllowed",
			"expectedSupplyDuration", "performer")
		dr.Require("quantity")
		if q := dr.One("quantity"); q.Exists() {
			q.Require("value", "system", "code")
			if n, ok := decimalValue(q.One("value")); ok {
				switch {
				case n < 1 || n != math.Trunc(n):
					q.One("value").Errorf(fhir.CodeValue, "the number of packages is a whole number of at least 1")
				case n > 999:
					q.One("value").Errorf(fhir.CodeValue, "at most 999 packages can be prescribed")
				}
			}
			fixedValue(q.One("system"), ucum, "the number of packages is a UCUM quantity")
			fixedValue(q.One("code"), "{Package}", "the quantity counts packages")
		}
	}

	if s := c.One("substitution"); s.Exists() {
		s.Forbid("reason", "allowedCodeableConcept")
		if s.Count("allowedCodeableConcept") == 0 {
			s.Require("allowedBoolean")
		}
		booleanValue(s.One("allowedBoolean"))
	}
}
