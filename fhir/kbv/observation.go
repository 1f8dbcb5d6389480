package kbv

import (
	"regexp"

	"github.com/redclone/red/fhir"
)

// Observation: KBV_PR_AW_Observation_Befund (a finding as free text), _Anamnese (history),
// _Blutdruck (blood pressure), _Koerpertemperatur (body temperature) and the others of KBV AWS.
// The profiles are checked by fhir/profile (which also recognises an observation without
// meta.profile by its code); here are the rules every observation meets, what the profile tables
// do not cover yet, and plausibility.

func init() { register("Observation", observation) }

const (
	loincSystem = "http://loinc.org"
	befundartCS = kbvCS + "KBV_CS_AW_Befundart"

	obsBefund     = "KBV_PR_AW_Observation_Befund"
	obsBlutdruck  = "KBV_PR_AW_Observation_Blutdruck"
	obsTemperatur = "KBV_PR_AW_Observation_Koerpertemperatur"
)

var (
	observationStatus = codes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown")
	loincFormat       = regexp.MustCompile(`^([0-9]{1,7})-([0-9])$`)
)

func observation(c *Cursor) {
	// FHIR core: status and code are required, status from its code list.
	c.Require("status", "code")
	codeIn(c.One("status"), observationStatus, "observation status")
	notFuture(c.One("effectiveDateTime"), false)
	periodPast(c.One("effectivePeriod"), false)
	notFuture(c.One("effectiveInstant"), false)
	notFuture(c.One("issued"), false)
	for _, coding := range firstChild(c, "code").All("coding") {
		if coding.One("system").Value() == loincSystem {
			loincCode(coding.One("code"))
		}
	}
	for _, comp := range c.All("component") {
		for _, coding := range firstChild(comp, "code").All("coding") {
			if coding.One("system").Value() == loincSystem {
				loincCode(coding.One("code"))
			}
		}
		componentValue(comp)
	}
	name, foreign := pickProfile(c, obsBefund, obsBlutdruck, obsTemperatur)
	if foreign || name == "" {
		// Another observation (weight, pulse, smoking status, …) or one without profile.
		for _, coding := range firstChild(c, "code").All("coding") {
			coding.Require("system", "code")
		}
		refTo(c.One("subject"), "Patient")
		refTo(c.One("encounter"), "Encounter")
		return
	}

	switch name {
	case obsBefund:
		// The category binds KBV_VS_AW_Befundart (until the profile tables cover it: it is not
		// among the value sets read).
		if cd := firstChild(c, "category", "coding"); cd.Exists() {
			fixedValue(cd.One("system"), befundartCS, "the kind of finding is coded with KBV_CS_AW_Befundart")
		}
	case obsBlutdruck:
		bloodPressure(c)
	case obsTemperatur:
		if t, ok := decimalValue(firstChild(c, "valueQuantity", "value")); ok && (t < 25 || t > 45) {
			firstChild(c, "valueQuantity", "value").Warnf(fhir.CodeValue, "a body temperature below 25 or above 45 °C is implausible")
		}
	}
}

// loincCode checks a present LOINC code: one to seven digits, a hyphen and a check digit (the
// LOINC mod-10 rule: every second digit from the right doubled, digit sums added). Like the other
// numbers' check digits, this is plausibility: the profiles do not check it.
func loincCode(c *Cursor) {
	if !c.Exists() {
		return
	}
	m := loincFormat.FindStringSubmatch(c.Value())
	if m == nil {
		c.Warnf(fhir.CodeValue, "a LOINC code is one to seven digits, a hyphen and a check digit, like 8310-5")
		return
	}
	digits, sum := m[1], 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
		}
		sum += d/10 + d%10
	}
	if (10-sum%10)%10 != int(m[2][0]-'0') {
		c.Warnf(fhir.CodeValue, "the LOINC code's check digit does not match its digits")
	}
}

// componentValue checks the well-formedness of a component's value (FHIR core).
func componentValue(comp *Cursor) {
	switch {
	case comp.Count("valueQuantity") > 0:
		decimalValue(firstChild(comp, "valueQuantity", "value"))
	case comp.Count("valuePeriod") > 0:
		comp.One("valuePeriod").Period()
	}
}

// bloodPressure checks the plausibility of the systolic and diastolic values (the profile
// checks which components there are and how they are coded).
func bloodPressure(c *Cursor) {
	values := map[string]float64{}
	for _, comp := range c.All("component") {
		kind := firstChild(comp, "code", "coding", "code").Value()
		v := firstChild(comp, "valueQuantity", "value")
		mmHg, ok := decimalValue(v)
		switch {
		case !ok:
		case mmHg <= 0:
			v.Warnf(fhir.CodeValue, "a blood pressure is a positive number")
		case mmHg > 300:
			v.Warnf(fhir.CodeValue, "a blood pressure above 300 mmHg is implausible")
		default:
			values[kind] = mmHg
		}
	}
	sys, sok := values["systolisch"]
	dia, dok := values["diastolisch"]
	if sok && dok && sys < dia {
		c.Warnf(fhir.CodeValue, "the systolic value is lower than the diastolic value")
	}
}
