package kbv

import (
	"regexp"
	"strings"

	"github.com/redclone/red/fhir"
)

// Condition: KBV_PR_AW_Diagnose, a diagnosis (ICD-10-GM, Alpha-ID, SNOMED CT or Orphanet coded).

func init() { register("Condition", condition) }

const (
	icdBfarm            = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"
	icdDimdi            = "http://fhir.de/CodeSystem/dimdi/icd-10-gm" // KBV AWS 1.2.0 and its examples
	conditionClinical   = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	conditionVerStatus  = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	diagnosekategorieCS = kbvCS + "KBV_CS_AW_Diagnosekategorie"
	diagnoseartCS       = kbvCS + "KBV_CS_AW_Diagnoseart"

	extDauerdiagnose      = kbvSD + "KBV_EX_AW_Diagnose_istDauerdiagnose"
	extDiagnosesicherheit = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
	extSeitenlokalisation = "http://fhir.de/StructureDefinition/seitenlokalisation"
)

var (
	// diagnoseCategories are the two category slices (closed slicing by coding.system) and their codes.
	diagnoseCategories = map[string]CodeSet{
		diagnosekategorieCS: codes("Eigendiagnose", "Fremddiagnose"),
		diagnoseartCS:       codes("Behandlungsdiagnose", "anamnestische_Diagnose"),
	}
	// diagnosisCodeSystems are the code.coding slices of KBV_PR_Base_Diagnosis, each at most once.
	diagnosisCodeSystems = [][]string{
		{icdBfarm, icdDimdi},
		{"http://fhir.de/CodeSystem/bfarm/alpha-id", "http://fhir.de/CodeSystem/dimdi/alpha-id"},
		{"http://snomed.info/sct"},
		{"http://www.orpha.net"},
	}
	diagnosesicherheit = codes("A", "G", "V", "Z")
	seitenlokalisation = codes("R", "L", "B")
	clinicalStatus     = codes("active", "recurrence", "relapse", "inactive", "remission", "resolved")
	verificationStatus = codes("unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error")

	// icdCode is one ICD-10-GM code: a letter, two digits, optionally a dot with one or two
	// digits, optionally a dagger, star, exclamation mark or plus as secondary-code marker.
	icdCode    = regexp.MustCompile(`^[A-Z][0-9]{2}(\.[0-9]{1,2})?[†*!+]?$`)
	yearFormat = regexp.MustCompile(`^[0-9]{4}$`)
)

func condition(c *Cursor) {
	_, foreign := pickProfile(c, "KBV_PR_AW_Diagnose")

	c.Require("code", "subject")
	diagnosisCode(c.One("code"))
	refTo(c.One("subject"), "Patient")
	notFuture(c.One("onsetDateTime"), false)
	periodPast(c.One("onsetPeriod"), false)
	notFuture(c.One("recordedDate"), false)
	if foreign {
		statusCoding(c.One("clinicalStatus"), conditionClinical, clinicalStatus)
		statusCoding(c.One("verificationStatus"), conditionVerStatus, verificationStatus)
		return
	}

	c.Forbid("identifier", "severity", "abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange",
		"abatementString", "recorder", "asserter", "stage", "evidence")
	c.Max("note", 1)
	requiredRef(c, "encounter", "Encounter")

	extValue(extensionOnce(c, extAbrechnungsrelevant, "istAbrechnungsrelevant", true), "valueBoolean")
	if e := extensionOnce(c, extDauerdiagnose, "istDauerdiagnose", false); e.Exists() {
		extValue(e, "valueBoolean")
	}
	if e := extensionOnce(c, extAdditionalComment, "diagnoseausnahmetatbestand", false); e.Exists() {
		extValue(e, "valueString").NotEmpty()
	}

	// Invariants activeOrInactive and ConfirmedOrRefuted: in the patient file a diagnosis is
	// active or inactive, and confirmed or refuted.
	if code := statusCoding(requiredWhy(c, "clinicalStatus", "a diagnosis is either active or inactive"), conditionClinical, clinicalStatus); code.Exists() && code.Value() != "active" && code.Value() != "inactive" {
		code.Errorf(fhir.CodeInvariant, "a diagnosis in the patient file is either active or inactive (invariant activeOrInactive)")
	}
	verification := statusCoding(requiredWhy(c, "verificationStatus", "a diagnosis is either confirmed or refuted"), conditionVerStatus, verificationStatus)
	if verification.Exists() && verification.Value() != "confirmed" && verification.Value() != "refuted" {
		verification.Errorf(fhir.CodeInvariant, "a diagnosis in the patient file is either confirmed or refuted (invariant ConfirmedOrRefuted)")
	}

	c.Max("category", 2)
	seen := map[string]bool{}
	for _, cat := range c.All("category") {
		cat.Require("coding")
		coding := cat.One("coding")
		codingIn(coding, diagnoseCategories)
		sys := coding.One("system").Value()
		if seen[sys] && diagnoseCategories[sys] != nil {
			cat.Errorf(fhir.CodeStructure, "each kind of category (Diagnosekategorie, Diagnoseart) may be given only once")
		}
		seen[sys] = true
	}

	// Diagnosesicherheit "A" (excluded) belongs to a refuted diagnosis and "G" (confirmed) to a
	// confirmed one (basisprofil-de icd-4 and icd-5, warnings there as here).
	for _, coding := range firstChild(c, "code").All("coding") {
		if !isICD(coding) {
			continue
		}
		sicher := coding.Extension(extDiagnosesicherheit)
		if len(sicher) == 0 || !verification.Exists() {
			continue
		}
		switch s := firstChild(sicher[0], "valueCoding", "code").Value(); {
		case s == "A" && verification.Value() != "refuted":
			sicher[0].Warnf(fhir.CodeInvariant, "Diagnosesicherheit A (excluded) goes with verificationStatus refuted")
		case s == "G" && verification.Value() != "confirmed":
			sicher[0].Warnf(fhir.CodeInvariant, "Diagnosesicherheit G (confirmed) goes with verificationStatus confirmed")
		}
	}
}

// requiredWhy returns parent.tag, reporting it missing with why.
func requiredWhy(parent *Cursor, tag, why string) *Cursor {
	t := parent.One(tag)
	if !t.Exists() {
		t.Errorf(fhir.CodeRequired, "%s is required: %s", tag, why)
	}
	return t
}

// statusCoding checks a status CodeableConcept (one coding of system with a code from set) and
// returns its code.
func statusCoding(cc *Cursor, system string, set CodeSet) *Cursor {
	if !cc.Exists() {
		return absentAt(cc, ".coding.code")
	}
	cc.Require("coding")
	coding := cc.One("coding")
	coding.Coding(system, set)
	return coding.One("code")
}

func isICD(coding *Cursor) bool {
	s := coding.One("system").Value()
	return s == icdBfarm || s == icdDimdi
}

// diagnosisCode checks Condition.code: at least one coding, each with system and code, each
// known code system at most once, and ICD-10-GM codings complete and well-formed.
func diagnosisCode(code *Cursor) {
	if !code.Exists() {
		return
	}
	code.Require("coding")
	count := make([]int, len(diagnosisCodeSystems))
	for _, coding := range code.All("coding") {
		coding.Require("system", "code")
		coding.One("code").NotEmpty()
		sys := coding.One("system").Value()
		for i, systems := range diagnosisCodeSystems {
			for _, s := range systems {
				if s == sys {
					count[i]++
					if count[i] == 2 {
						coding.Errorf(fhir.CodeStructure, "the diagnosis may carry only one code of this code system")
					}
				}
			}
		}
		if isICD(coding) {
			icdCoding(coding)
		}
	}
}

// icdCoding checks an ICD-10-GM coding: the catalogue year, the code's form and its
// Diagnosesicherheit and Seitenlokalisation extensions.
func icdCoding(coding *Cursor) {
	coding.Require("version")
	if v := coding.One("version"); v.Exists() && !yearFormat.MatchString(v.Value()) {
		v.Errorf(fhir.CodeValue, "the ICD-10-GM version is the catalogue year, four digits like 2025")
	}
	if code := coding.One("code"); code.Exists() && code.Value() != "" {
		for part := range strings.FieldsSeq(code.Value()) {
			if !icdCode.MatchString(part) {
				code.Errorf(fhir.CodeValue, "an ICD-10-GM code is a capital letter and two digits, optionally a dot with one or two digits (like J06.9 or M54.16), and optionally a secondary-code marker (†, *, ! or +)")
				break
			}
		}
	}
	if e := extensionOnce(coding, extDiagnosesicherheit, "Diagnosesicherheit", false); e.Exists() {
		extValue(e, "valueCoding").Coding(kbvCS+"KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT", diagnosesicherheit)
	}
	if e := extensionOnce(coding, extSeitenlokalisation, "Seitenlokalisation", false); e.Exists() {
		extValue(e, "valueCoding").Coding(kbvCS+"KBV_CS_SFHIR_ICD_SEITENLOKALISATION", seitenlokalisation)
	}
}
