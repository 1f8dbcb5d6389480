package validate

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir/profile"
)

// kbvSD is where the KBV's StructureDefinitions live.
const kbvSD = "https://fhir.kbv.de/StructureDefinition/"

// awsProfiles are the resource profiles of KBV AWS 1.2.0 in the tables of fhir/profile, by the
// resource type they constrain (TestAWSProfilesAreTheTables keeps the list and the tables in step).
var awsProfiles = map[string][]string{
	"ActivityDefinition": {"KBV_PR_AW_Behandlungsbaustein_Diagnose", "KBV_PR_AW_Behandlungsbaustein_Leistungsziffern",
		"KBV_PR_AW_Behandlungsbaustein_OMIMCode", "KBV_PR_AW_Behandlungsbaustein_Sonstige",
		"KBV_PR_AW_Behandlungsbaustein_Textvorlage", "KBV_PR_AW_Behandlungsbaustein_Verordnung"},
	"AllergyIntolerance": {"KBV_PR_AW_Allergie"},
	"Appointment":        {"KBV_PR_AW_Termin"},
	"AuditEvent":         {"KBV_PR_AW_Report_Export", "KBV_PR_AW_Report_Import"},
	"Bundle": {"KBV_PR_AW_Bundle_Adressbuch", "KBV_PR_AW_Bundle_Behandlungsbaustein", "KBV_PR_AW_Bundle_Patientenakte",
		"KBV_PR_AW_Bundle_Sprechstundenbedarf", "KBV_PR_AW_Bundle_Termin"},
	"Claim": {"KBV_PR_AW_Abrechnung_BG", "KBV_PR_AW_Abrechnung_HzV_BesondereVersorgung_Selektiv",
		"KBV_PR_AW_Abrechnung_Vorlaeufig", "KBV_PR_AW_Abrechnung_privat", "KBV_PR_AW_Abrechnung_vertragsaerztlich"},
	"Composition": {"KBV_PR_AW_Krebsfrueherkennung_Frauen", "KBV_PR_AW_Krebsfrueherkennung_Frauen_2020",
		"KBV_PR_AW_Krebsfrueherkennung_Maenner"},
	"Condition":                  {"KBV_PR_AW_Diagnose", "KBV_PR_AW_Unfall"},
	"Consent":                    {"KBV_PR_AW_Notfallbenachrichtigter", "KBV_PR_AW_Patientenverfuegung", "KBV_PR_AW_Vorsorgevollmacht"},
	"Contract":                   {"KBV_PR_AW_Selektivvertrag"},
	"Coverage":                   {"KBV_PR_AW_Krankenversicherungsverhaeltnis"},
	"CoverageEligibilityRequest": {"KBV_PR_AW_Kur_Antrag", "KBV_PR_AW_Leistungsanfrage_Heilmittel", "KBV_PR_AW_Leistungsanfrage_Psychotherapie"},
	"CoverageEligibilityResponse": {"KBV_PR_AW_Kur_Kurgenehmigung", "KBV_PR_AW_Kur_Kurverlaengerung",
		"KBV_PR_AW_Leistungsgenehmigung_Heilmittel", "KBV_PR_AW_Leistungsgenehmigung_Psychotherapie"},
	"Device": {"KBV_PR_AW_Hersteller_Software", "KBV_PR_AW_Hilfsmittel", "KBV_PR_AW_Krankenbefoerderung_Befoerderungsmittel",
		"KBV_PR_AW_Material_Sache", "KBV_PR_AW_Ringversuchszertifikat"},
	"DiagnosticReport": {"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_2020"},
	"DocumentReference":   {"KBV_PR_AW_Anlage", "KBV_PR_AW_Gesundheitspass"},
	"Encounter":           {"KBV_PR_AW_Begegnung", "KBV_PR_AW_Hausbesuch", "KBV_PR_AW_Stationaere_Behandlung"},
	"Immunization":        {"KBV_PR_AW_Impfung"},
	"Location":            {"KBV_PR_AW_Betriebsstaette_Ort", "KBV_PR_AW_Hausbesuch_Ort", "KBV_PR_AW_Unfall_Ort"},
	"Medication":          {"KBV_PR_AW_Medikament"},
	"MedicationRequest":   {"KBV_PR_AW_Verordnung_Arzneimittel"},
	"MedicationStatement": {"KBV_PR_AW_Dauermedikation"},
	"Observation": {"KBV_PR_AW_Krebsfrueherkennung_Befund_Rektum_Kolon",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Anamnese_Diverse", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Anamnese_Hormonanwendung",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Anamnese_Hormonanwendung_2020", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Befund_Diverse",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Befund_Diverse_Ab30", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Gynaekologische_Diagnose",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Impfung_2020", "KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Testergebnis_2020",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Bemerkungen",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Diverse",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Diverse_2020",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Endozervikale_Zellen",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Gruppe",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Kontrolle",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Kontrolle_nach_Entzuendungsbehandlung",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Kontrolle_nach_Freitext",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Kontrolle_nach_Oestrogenbehandlung",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_histologische_Klaerung",
		"KBV_PR_AW_Krebsfrueherkennung_Maenner_Anamnese_Diverse", "KBV_PR_AW_Krebsfrueherkennung_Maenner_Befund_Diverse",
		"KBV_PR_AW_Observation_Anamnese", "KBV_PR_AW_Observation_Bauchumfang", "KBV_PR_AW_Observation_Befund",
		"KBV_PR_AW_Observation_Blutdruck", "KBV_PR_AW_Observation_Hueftumfang", "KBV_PR_AW_Observation_Koerpertemperatur",
		"KBV_PR_AW_Observation_Puls", "KBV_PR_AW_Observation_Raucherstatus", "KBV_PR_AW_Observation_Schwangerschaft"},
	"Organization":     {"KBV_PR_AW_Betriebsstaette", "KBV_PR_AW_Organisation"},
	"Patient":          {"KBV_PR_AW_Patient"},
	"Person":           {"KBV_PR_AW_Person"},
	"PlanDefinition":   {"KBV_PR_AW_Behandlungsbaustein_Definition"},
	"Practitioner":     {"KBV_PR_AW_Behandelnder", "KBV_PR_AW_Mitarbeiter"},
	"PractitionerRole": {"KBV_PR_AW_BehandelnderFunktion"},
	"Procedure": {"KBV_PR_AW_Ambulante_Operation", "KBV_PR_AW_Ambulante_Operation_General", "KBV_PR_AW_Genetische_Untersuchung",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Gynaekologische_Operation", "KBV_PR_AW_Kur", "KBV_PR_AW_Therapie",
		"KBV_PR_AW_Untersuchung"},
	"Provenance":    {"KBV_PR_AW_Provenienz"},
	"RelatedPerson": {"KBV_PR_AW_Bezugsperson"},
	"ServiceRequest": {"KBV_PR_AW_Behandlung_im_Auftrag_Ueberweisung", "KBV_PR_AW_Krankenbefoerderung",
		"KBV_PR_AW_Krankenbefoerderung_42019", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Auftrag",
		"KBV_PR_AW_Krebsfrueherkennung_Frauen_Auftrag_2020", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Empfehlung",
		"KBV_PR_AW_Krebsfrueherkennung_Maenner_Auftrag", "KBV_PR_AW_Notfall", "KBV_PR_AW_Verordnung_Arbeitsunfaehigkeit",
		"KBV_PR_AW_Verordnung_Heilmittel", "KBV_PR_AW_Verordnung_Hilfsmittel", "KBV_PR_AW_Weiterbehandlung_durch"},
	"SupplyRequest": {"KBV_PR_AW_Anforderung_Sprechstundenbedarf"},
}

// kindPaths name, for the types with several AWS profiles, the element whose fixed code in the
// tables tells the profiles apart (the kind of observation, the encounter's class, …).
var kindPaths = map[string]string{
	"Claim":             "subType.coding.code",
	"Condition":         "code.coding.code",
	"DocumentReference": "category.coding.code",
	"Encounter":         "class.code",
	"Observation":       "code.coding.code",
	"Practitioner":      "qualification.code.coding.code",
}

// Choice is the profile a resource without meta.profile is checked against.
type Choice struct {
	Canonical string // the profile's URL; "" when there is none to choose
	Why       string // when Canonical is "": why not (for an information issue)
}

// Choose picks the KBV AWS profile for a resource that names none in meta.profile, from the
// tables: the one profile of its type; else, of the type's profiles, the one whose fixed code at
// the type's kind element (kindPaths: Observation.code, Encounter.class, Claim.subType, …) the
// resource carries; else, when the resource carries none of those codes, the one profile of the
// type that fixes no such code (Condition → KBV_PR_AW_Diagnose, as KBV_PR_AW_Unfall fixes the code
// Unfall; Practitioner → KBV_PR_AW_Behandelnder, as KBV_PR_AW_Mitarbeiter fixes the qualification
// Mitarbeiter). Anything else is no obvious choice: the resource is then checked by the
// hand-written rules alone.
func Choose(res *etree.Element) Choice {
	names := awsProfiles[res.Tag]
	switch len(names) {
	case 0:
		return Choice{Why: fmt.Sprintf("the resource names no profile in meta.profile, and KBV AWS 1.2.0 has no profile for %s: it is checked by red's own rules only", res.Tag)}
	case 1:
		return Choice{Canonical: kbvSD + names[0]}
	}
	have := valuesAt(res, kindPaths[res.Tag])
	var marked, unmarked []string
	for _, n := range names {
		ms := markers(n)
		if len(ms) == 0 {
			unmarked = append(unmarked, n)
			continue
		}
		for _, m := range ms {
			if slices.Contains(have, m) {
				marked = append(marked, n)
				break
			}
		}
	}
	switch {
	case len(marked) == 1:
		return Choice{Canonical: kbvSD + marked[0]}
	case len(marked) == 0 && len(unmarked) == 1:
		return Choice{Canonical: kbvSD + unmarked[0]}
	}
	return Choice{Why: fmt.Sprintf("the resource names no profile in meta.profile, and none of the KBV AWS profiles for %s is the obvious one (%s): it is checked by red's own rules only; name its profile in meta.profile", res.Tag, strings.Join(names, ", "))}
}

var (
	markersOnce sync.Once
	markerSets  map[string][]string // profile name → its fixed codes at its type's kind element
)

// markers are the codes the KBV profile name fixes at its type's kind element.
func markers(name string) []string {
	markersOnce.Do(func() {
		markerSets = map[string][]string{}
		for typ, names := range awsProfiles {
			kind := kindPaths[typ]
			if kind == "" {
				continue
			}
			for _, n := range names {
				sd := profile.Default().Profile(kbvSD + n)
				if sd == nil {
					continue
				}
				for _, e := range sd.Elements {
					if e.Path == typ+"."+kind && e.Fixed != nil && e.Fixed.Node.Value != "" {
						markerSets[n] = append(markerSets[n], e.Fixed.Node.Value)
					}
				}
			}
		}
	})
	return markerSets[name]
}

// valuesAt collects the value attributes at a dotted path below el.
func valuesAt(el *etree.Element, path string) []string {
	if path == "" {
		return nil
	}
	cur := []*etree.Element{el}
	for _, s := range strings.Split(path, ".") {
		var next []*etree.Element
		for _, c := range cur {
			next = append(next, c.SelectElements(s)...)
		}
		cur = next
	}
	out := make([]string, 0, len(cur))
	for _, c := range cur {
		out = append(out, c.SelectAttrValue("value", ""))
	}
	return out
}
