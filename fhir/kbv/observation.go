package kbv

import (
	"regexp"
	"slices"
	"strings"

	"github.com/redclone/red/fhir"
)

// Observation: KBV_PR_AW_Observation_Befund (a finding as free text), _Anamnese (history),
// _Blutdruck (blood pressure) and _Koerpertemperatur (body temperature). The profile is taken
// from meta.profile, else recognised by the codes; other observations get the general rules.

func init() { register("Observation", observation) }

const (
	loincSystem         = "http://loinc.org"
	ressourcentypCS     = kbvCS + "KBV_CS_AW_Ressourcentyp"
	koerperkenngroessen = kbvCS + "KBV_CS_AW_Koerperkenngroessen"
	blutdruckTypen      = kbvCS + "KBV_CS_AW_Blutdruck_Typen"
	befundartCS         = kbvCS + "KBV_CS_AW_Befundart"

	obsBefund     = "KBV_PR_AW_Observation_Befund"
	obsAnamnese   = "KBV_PR_AW_Observation_Anamnese"
	obsBlutdruck  = "KBV_PR_AW_Observation_Blutdruck"
	obsTemperatur = "KBV_PR_AW_Observation_Koerpertemperatur"
)

var (
	observationStatus = codes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown")
	loincFormat       = regexp.MustCompile(`^([0-9]{1,7})-([0-9])$`)

	// codeSlices are each profile's closed code.coding slicing (by system) with the fixed codes.
	codeSlices = map[string][]codeSlice{
		obsBefund:     {{ressourcentypCS, "Befund", true}, {loincSystem, "", false}},
		obsAnamnese:   {{ressourcentypCS, "Anamnese", true}, {loincSystem, "", false}},
		obsBlutdruck:  {{loincSystem, "85354-9", true}, {koerperkenngroessen, "Blutdruck", true}},
		obsTemperatur: {{loincSystem, "8310-5", true}, {koerperkenngroessen, "Koerpertemperatur", true}},
	}
	// componentValues are the value types a Befund's component may have.
	componentValues = []string{"valueQuantity", "valueString", "valueRange", "valueRatio", "valueTime", "valueDateTime", "valuePeriod"}
)

// codeSlice is one coding a profile allows in code.coding: its system, its fixed code (any when
// ""), and whether it is required.
type codeSlice struct {
	system, code string
	required     bool
}

func observation(c *Cursor) {
	name, foreign := pickProfile(c, obsBefund, obsAnamnese, obsBlutdruck, obsTemperatur)
	if name == "" && !foreign {
		name = observationKind(c)
	}
	c.Require("status", "code")
	if name == "" {
		// Another observation (weight, pulse, smoking status, …): the general rules.
		codeIn(c.One("status"), observationStatus, "observation status")
		code := c.One("code")
		code.Require("coding")
		for _, coding := range code.All("coding") {
			coding.Require("system", "code")
			if coding.One("system").Value() == loincSystem {
				loincCode(coding.One("code"))
			}
		}
		refTo(c.One("subject"), "Patient")
		refTo(c.One("encounter"), "Encounter")
		notFuture(c.One("effectiveDateTime"), false)
		periodPast(c.One("effectivePeriod"), false)
		notFuture(c.One("effectiveInstant"), false)
		notFuture(c.One("issued"), false)
		return
	}

	fixedValue(c.One("status"), "final", "observations in the patient file are final")
	requiredRef(c, "subject", "Patient")
	requiredRef(c, "encounter", "Encounter")
	c.Forbid("effectivePeriod", "effectiveTiming", "effectiveInstant", "identifier", "basedOn", "partOf", "focus",
		"issued", "performer", "dataAbsentReason", "interpretation", "note", "bodySite", "method", "specimen",
		"device", "referenceRange", "hasMember", "derivedFrom")
	notFuture(c.One("effectiveDateTime"), false)
	checkCodeSlices(c.One("code"), codeSlices[name])

	switch name {
	case obsBefund:
		c.Require("category")
		singleCoding(c.One("category"), befundartCS, nil)
		valueX(c, true, "valueString").NotEmpty()
		for _, comp := range c.All("component") {
			comp.Forbid("dataAbsentReason", "interpretation", "referenceRange")
			comp.Require("code")
			singleCoding(comp.One("code"), loincSystem, nil)
			loincCode(firstChild(comp, "code", "coding", "code"))
			componentValue(valueX(comp, true, componentValues...))
		}
	case obsAnamnese:
		c.Forbid("category", "component")
		valueX(c, true, "valueString").NotEmpty()
	case obsBlutdruck:
		c.Forbid("category")
		valueX(c, false)
		bloodPressure(c)
	case obsTemperatur:
		c.Forbid("category", "component")
		q := valueX(c, true, "valueQuantity")
		if q.Exists() {
			q.Forbid("comparator")
			q.Require("value")
			fixedValue(q.One("unit"), "°C", "body temperature is recorded in degrees Celsius")
			fixedValue(q.One("system"), ucum, "the unit is a UCUM unit")
			fixedValue(q.One("code"), "Cel", "body temperature is recorded in degrees Celsius")
			if t, ok := decimalValue(q.One("value")); ok && (t < 25 || t > 45) {
				q.One("value").Warnf(fhir.CodeValue, "a body temperature below 25 or above 45 °C is implausible")
			}
		}
	}
}

// observationKind recognises the four profiles by their codes.
func observationKind(c *Cursor) string {
	for _, coding := range firstChild(c, "code").All("coding") {
		switch sys, code := coding.One("system").Value(), coding.One("code").Value(); {
		case sys == ressourcentypCS && code == "Befund":
			return obsBefund
		case sys == ressourcentypCS && code == "Anamnese":
			return obsAnamnese
		case sys == koerperkenngroessen && code == "Blutdruck", sys == loincSystem && code == "85354-9":
			return obsBlutdruck
		case sys == koerperkenngroessen && code == "Koerpertemperatur", sys == loincSystem && code == "8310-5":
			return obsTemperatur
		}
	}
	return ""
}

// checkCodeSlices checks a CodeableConcept against a closed slicing by system: every coding of an
// allowed system (once), with the fixed code, and every required slice present.
func checkCodeSlices(code *Cursor, allowed []codeSlice) {
	if !code.Exists() {
		return
	}
	code.Require("coding")
	seen := map[string]bool{}
	for _, coding := range code.All("coding") {
		coding.Require("system", "code")
		sys := coding.One("system")
		if !sys.Exists() {
			continue
		}
		var slice *codeSlice
		for i := range allowed {
			if allowed[i].system == sys.Value() {
				slice = &allowed[i]
			}
		}
		if slice == nil {
			systems := make([]string, len(allowed))
			for i, s := range allowed {
				systems[i] = s.system
			}
			sys.Errorf(fhir.CodeStructure, "only codings of %s are allowed here", orList(systems))
			continue
		}
		if seen[slice.system] {
			coding.Errorf(fhir.CodeStructure, "only one coding of %s is allowed", slice.system)
		}
		seen[slice.system] = true
		cd := coding.One("code")
		if slice.code != "" {
			fixedValue(cd, slice.code, "it is the code this kind of observation is recognised by")
		}
		if slice.system == loincSystem {
			loincCode(cd)
		}
	}
	for _, s := range allowed {
		if s.required && !seen[s.system] && code.Count("coding") > 0 {
			absentAt(code, ".coding").Errorf(fhir.CodeRequired, "a coding of %s with code %q is required", s.system, s.code)
		}
	}
}

// loincCode checks a present LOINC code: one to seven digits, a hyphen and a check digit
// (the LOINC mod-10 rule: every second digit from the right doubled, digit sums added).
func loincCode(c *Cursor) {
	if !c.Exists() {
		return
	}
	m := loincFormat.FindStringSubmatch(c.Value())
	if m == nil {
		c.Errorf(fhir.CodeValue, "a LOINC code is one to seven digits, a hyphen and a check digit, like 8310-5")
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
		c.Errorf(fhir.CodeValue, "the LOINC code's check digit does not match its digits")
	}
}

// valueX returns the value[x] of c, which must be one of allowed (no value at all when allowed is
// empty); a value of another type, more than one value and a missing required value are reported.
func valueX(c *Cursor, required bool, allowed ...string) *Cursor {
	if !c.Exists() {
		return absentAt(c, ".value")
	}
	var found *Cursor
	visited := map[string]bool{}
	for _, k := range c.Element().ChildElements() {
		if !strings.HasPrefix(k.Tag, "value") || visited[k.Tag] {
			continue
		}
		visited[k.Tag] = true
		v := c.One(k.Tag)
		switch {
		case len(allowed) == 0:
			v.Errorf(fhir.CodeStructure, "this kind of observation has no value of its own")
		case !slices.Contains(allowed, k.Tag):
			v.Errorf(fhir.CodeStructure, "the value must be %s", orList(allowed))
		case found != nil:
			v.Errorf(fhir.CodeStructure, "only one value is allowed")
		default:
			found = v
		}
	}
	if found != nil {
		return found
	}
	missing := absentAt(c, ".value[x]")
	if len(allowed) == 1 {
		missing = absentAt(c, "."+allowed[0])
	}
	if required && len(allowed) > 0 {
		missing.Errorf(fhir.CodeRequired, "a value is required (%s)", orList(allowed))
	}
	return missing
}

// componentValue checks the well-formedness of a Befund component's value.
func componentValue(v *Cursor) {
	if !v.Exists() {
		return
	}
	switch v.Element().Tag {
	case "valueQuantity":
		v.Require("value")
		decimalValue(v.One("value"))
	case "valueString":
		v.NotEmpty()
	case "valueDateTime":
		v.Date(false)
	case "valuePeriod":
		v.Period()
	}
}

// bloodPressure checks the systolic and diastolic components: one or two, each kind once, each
// with a positive quantity.
func bloodPressure(c *Cursor) {
	comps := c.All("component")
	if len(comps) == 0 {
		absentAt(c, ".component").Errorf(fhir.CodeRequired, "a blood pressure needs its systolic or diastolic value (or both) as component")
	}
	c.Max("component", 2)
	seen := map[string]bool{}
	values := map[string]float64{}
	for _, comp := range comps {
		comp.Forbid("dataAbsentReason", "interpretation", "referenceRange")
		comp.Require("code")
		singleCoding(comp.One("code"), blutdruckTypen, codes("systolisch", "diastolisch"))
		kind := firstChild(comp, "code", "coding", "code").Value()
		if seen[kind] {
			comp.Errorf(fhir.CodeStructure, "the %s value may be given only once", kind)
		}
		seen[kind] = true
		q := valueX(comp, true, "valueQuantity")
		if !q.Exists() {
			continue
		}
		q.Require("value")
		if mmHg, ok := decimalValue(q.One("value")); ok {
			switch {
			case mmHg <= 0:
				q.One("value").Errorf(fhir.CodeValue, "a blood pressure is a positive number")
			case mmHg > 300:
				q.One("value").Warnf(fhir.CodeValue, "a blood pressure above 300 mmHg is implausible")
			default:
				values[kind] = mmHg
			}
		}
	}
	sys, sok := values["systolisch"]
	dia, dok := values["diastolisch"]
	if sok && dok && sys < dia {
		c.Warnf(fhir.CodeValue, "the systolic value is lower than the diastolic value")
	}
}
