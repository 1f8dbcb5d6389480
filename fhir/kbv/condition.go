package kbv

import (
	"regexp"
	"strings"

	"github.com/redclone/red/fhir"
)

// Condition: KBV_PR_AW_Diagnose, a diagnosis (ICD-10-GM, Alpha-ID, SNOMED CT or Orphanet coded).
// The profile is checked by fhir/profile; here are the rules every condition meets, what the
// profile tables do not cover yet (the code slices of KBV_PR_Base_Diagnosis, which is not among
// the definitions read, and the value sets that are not), and plausibility.

func init() { register("Condition", condition) }

const (
	icdBfarm            = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"
	icdDimdi            = "http://fhir.de/CodeSystem/dimdi/icd-10-gm" // KBV AWS 1.2.0 and its examples
	conditionClinical   = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	conditionVerStatus  = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	diagnosekategorieCS = kbvCS + "KBV_CS_AW_Diagnosekategorie"

	extDiagnosesicherheit = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
	extSeitenlokalisation = "http://fhir.de/StructureDefinition/seitenlokalisation"
)

var (
	// diagnosekategorien is KBV_CS_AW_Diagnosekategorie.
	diagnosekategorien = codes("Eigendiagnose", "Fremddiagnose")
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
	// FHIR core: subject is required, the statuses come from their code systems; red needs the code
	// (it names the diagnosis), as KBV_PR_Base_Diagnosis does.
	c.Require("code", "subject")
	diagnosisCode(c.One("code"))
	statusCoding(c.One("clinicalStatus"), conditionClinical, clinicalStatus)
	statusCoding(c.One("verificationStatus"), conditionVerStatus, verificationStatus)
	notFuture(c.One("onsetDateTime"), false)
	periodPast(c.One("onsetPeriod"), false)
	notFuture(c.One("recordedDate"), false)
	name, foreign := pickProfile(c, "KBV_PR_AW_Diagnose")
	if foreign || name == "" {
		refTo(c.One("subject"), "Patient")
		return
	}

	// The invariants activeOrInactive and ConfirmedOrRefuted hold for a diagnosis without status
	// (an empty result, as FHIRPath reads it); the KBV's validator reads that as a violation.
	for _, st := range []struct{ tag, why string }{
		{"clinicalStatus", "a diagnosis in the patient file is active or inactive (invariant activeOrInactive)"},
		{"verificationStatus", "a diagnosis in the patient file is confirmed or refuted (invariant ConfirmedOrRefuted)"},
	} {
		if t := c.One(st.tag); !t.Exists() {
			t.Errorf(fhir.CodeRequired, "%s is required: %s", st.tag, st.why)
		}
	}

	// The slice diagnosekategorie binds KBV_VS_AW_Diagnosekategorie (until the profile tables cover
	// it: its code system is not among the definitions read).
	for _, cat := range c.All("category") {
		for _, cd := range cat.All("coding") {
			if cd.One("system").Value() == diagnosekategorieCS {
				codeIn(cd.One("code"), diagnosekategorien, "Diagnosekategorie")
			}
		}
	}
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
