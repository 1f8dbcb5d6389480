package kbv

import (
	"math"

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

const pznSystem = "http://fhir.de/CodeSystem/ifa/pzn"

var (
	medicationStatementStatus = codes("active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken")
	medicationRequestStatus   = codes("active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown")
	medicationRequestIntent   = codes("proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option")
)

func medication(c *Cursor) {
	for _, coding := range firstChild(c, "code").All("coding") {
		if coding.One("system").Value() == pznSystem {
			checkPZN(coding.One("code"))
		}
	}
	if name, foreign := pickProfile(c, "KBV_PR_AW_Medikament"); foreign || name == "" {
		return
	}
	positiveDecimal(firstChild(c, "amount", "numerator", "value"), "the package size")
}

// checkPZN checks a PZN's format and check digit.
func checkPZN(c *Cursor) {
	if !c.Exists() || c.Value() == "" {
		return
	}
	if err := ident.PZN(c.Value()); err != nil {
		c.Number(err)
	}
}

// positiveDecimal reports a present decimal that is not above zero; what names the quantity.
func positiveDecimal(c *Cursor, what string) {
	if v, ok := decimalValue(c); ok && v <= 0 {
		c.Errorf(fhir.CodeValue, "%s must be greater than zero", what)
	}
}

func medicationStatement(c *Cursor) {
	// FHIR core: status and subject are required, status from its code list.
	c.Require("status", "subject")
	status := c.One("status")
	codeIn(status, medicationStatementStatus, "medication statement status")
	notFuture(c.One("effectiveDateTime"), false)
	singleNote(c)
	name, foreign := pickProfile(c, "KBV_PR_AW_Dauermedikation")
	if foreign || name == "" {
		refTo(c.One("subject"), "Patient")
		refTo(c.One("medicationReference"), "Medication")
		c.One("effectivePeriod").Period()
		return
	}
	// The comment extension KBV_EX_Base_Additional_Comment carries a valueString (until the
	// profile tables cover it: KBV Basis is not among the definitions read).
	for _, e := range c.Extension(extAdditionalComment) {
		extValue(e, "valueString").NotEmpty()
	}
	if p := c.One("effectivePeriod"); p.Exists() {
		if status.Value() == "intended" {
			p.Period() // planned: may start in the future
		} else {
			periodPast(p, true)
		}
	}
}

// singleNote checks the note's text (FHIR core: an Annotation has a text).
func singleNote(c *Cursor) {
	for _, n := range c.All("note") {
		n.Require("text")
		n.One("text").NotEmpty()
	}
}

func medicationRequest(c *Cursor) {
	// FHIR core: status, intent and subject are required, status and intent from their code lists.
	c.Require("status", "intent", "subject")
	codeIn(c.One("status"), medicationRequestStatus, "medication request status")
	codeIn(c.One("intent"), medicationRequestIntent, "medication request intent")
	notFuture(c.One("authoredOn"), false)
	singleNote(c)
	if s := c.One("substitution"); s.Exists() && s.Count("allowedCodeableConcept") == 0 {
		s.Require("allowedBoolean")
	}
	name, foreign := pickProfile(c, "KBV_PR_AW_Verordnung_Arzneimittel")
	if foreign || name == "" {
		refTo(c.One("subject"), "Patient")
		refTo(c.One("medicationReference"), "Medication")
		return
	}
	if v := firstChild(c, "dispenseRequest", "quantity", "value"); v.Exists() {
		if n, ok := decimalValue(v); ok {
			switch {
			case n < 1 || n != math.Trunc(n):
				v.Warnf(fhir.CodeValue, "the number of packages is a whole number of at least 1")
			case n > 999:
				v.Warnf(fhir.CodeValue, "at most 999 packages can be prescribed")
			}
		}
	}
}
