package records

import (
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// labels are the German names RED's narratives give resource types.
var labels = map[string]string{
	"Patient": "Patient", "Practitioner": "Behandelnder", "PractitionerRole": "Behandlerrolle",
	"Organization": "Betriebsstätte", "Coverage": "Versicherung", "Encounter": "Begegnung",
	"Condition": "Diagnose", "Observation": "Befund", "Claim": "Abrechnung",
	"DocumentReference": "Dokument", "Medication": "Medikament", "MedicationStatement": "Dauermedikation",
	"MedicationRequest": "Verordnung", "Provenance": "Provenienz",
}

// setNarrative replaces res.text by RED's one-line German summary, e.g.
// "Patient Erika Mustermann (V2) | ID 60151 | geb. 21.03.1957 | zuletzt bearbeitet 30.11.2026 09:30".
func setNarrative(res *etree.Element, version string, at time.Time) {
	label := labels[res.Tag]
	if label == "" {
		label = res.Tag
	}
	var facts []string
	title := label
	if k, ok := kinds[res.Tag]; ok && k.summary != nil {
		parts := strings.SplitN(k.summary(res), "|", 2)
		if name := strings.TrimSpace(parts[0]); name != "" && name != label {
			title += " " + name
		}
		if len(parts) == 2 {
			for _, f := range strings.Split(parts[1], "|") {
				if f = strings.TrimSpace(f); f != "" {
					facts = append(facts, f)
				}
			}
		}
	}
	line := []string{title + " (V" + version + ")", "ID " + fhir.ChildValue(res, "id")}
	line = append(line, facts...)
	line = append(line, "zuletzt bearbeitet "+at.In(berlin).Format("02.01.2006 15:04"))

	for _, old := range res.SelectElements("text") {
		res.RemoveChild(old)
	}
	text := etree.NewElement("text")
	fhir.SetValue(text.CreateElement("status"), "extensions")
	div := text.CreateElement("div")
	div.CreateAttr("xmlns", fhir.XHTMLNamespace)
	div.SetText(strings.Join(line, " | "))
	// text follows id, meta, implicitRules and language
	at2 := 0
	for i, c := range res.Child {
		if el, ok := c.(*etree.Element); ok && (el.Tag == "id" || el.Tag == "meta" || el.Tag == "implicitRules" || el.Tag == "language") {
			at2 = i + 1
		}
	}
	res.InsertChildAt(at2, text)
}

var berlin = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Berlin"); err == nil {
		return l
	}
	return time.UTC
}()

// germanDate turns YYYY-MM-DD (or a dateTime) into DD.MM.YYYY; partial dates stay as they are.
func germanDate(v string) string {
	if len(v) >= 10 && v[4] == '-' && v[7] == '-' {
		return v[8:10] + "." + v[5:7] + "." + v[:4]
	}
	return v
}

func join(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

func v(res *etree.Element, path string) string { return fhir.Value(find(res, path)) }

func all(res *etree.Element, path string) []string {
	var out []string
	for _, e := range findAll(res, path) {
		if s := fhir.Value(e); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func humanName(res *etree.Element) string {
	n := res.SelectElement("name")
	if n == nil {
		return ""
	}
	if t := fhir.ChildValue(n, "text"); t != "" {
		return t
	}
	return join(" ", join(" ", all(n, "prefix")...), join(" ", all(n, "given")...), fhir.ChildValue(n, "family"))
}

func fact(label, value string) string {
	if value == "" {
		return ""
	}
	return label + " " + value
}

func identifierBySystem(res *etree.Element, suffix string) string {
	for _, id := range res.SelectElements("identifier") {
		if strings.HasSuffix(fhir.ChildValue(id, "system"), suffix) {
			return fhir.ChildValue(id, "value")
		}
	}
	return ""
}

func display(res *etree.Element, path string) string {
	e := find(res, path)
	if e == nil {
		return ""
	}
	if t := fhir.ChildValue(e, "text"); t != "" {
		return t
	}
	for _, c := range e.SelectElements("coding") {
		if d := fhir.ChildValue(c, "display"); d != "" {
			return d
		}
		if code := fhir.ChildValue(c, "code"); code != "" {
			return code
		}
	}
	return ""
}

// Each summary returns "name | fact | fact"; empty facts are dropped.
func patientSummary(r *etree.Element) string {
	return humanName(r) + "|" + fact("geb.", germanDate(v(r, "birthDate"))) + "|" + fact("KVNR", identifierBySystem(r, "kvid-10"))
}

func practitionerSummary(r *etree.Element) string {
	return humanName(r) + "|" + fact("LANR", identifierBySystem(r, "KBV_NS_Base_ANR"))
}

func practitionerRoleSummary(r *etree.Element) string {
	return "|" + fact("Behandelnder", v(r, "practitioner/reference")) + "|" + fact("Betriebsstätte", v(r, "organization/reference"))
}

func organizationSummary(r *etree.Element) string {
	return v(r, "name") + "|" + fact("BSNR", identifierBySystem(r, "KBV_NS_Base_BSNR")) + "|" + fact("IK", identifierBySystem(r, "iknr"))
}

func coverageSummary(r *etree.Element) string {
	return v(r, "payor/display") + "|" + fact("Art", display(r, "type")) + "|" + fact("ab", germanDate(v(r, "period/start"))) + "|" + fact("bis", germanDate(v(r, "period/end")))
}

var encounterStatus = map[string]string{
	"planned": "geplant", "arrived": "eingetroffen", "triaged": "gesichtet", "in-progress": "laufend",
	"onleave": "beurlaubt", "finished": "abgeschlossen", "cancelled": "abgesagt", "entered-in-error": "fehlerhaft erfasst",
}

func encounterSummary(r *etree.Element) string {
	return germanDate(v(r, "period/start")) + "|" + encounterStatus[v(r, "status")]
}

func conditionSummary(r *etree.Element) string {
	return display(r, "code") + "|" + fact("ICD-10", v(r, "code/coding/code"))
}

func observationSummary(r *etree.Element) string {
	name := v(r, "code/text")
	for _, c := range findAll(r, "code/coding") {
		if name == "" && strings.HasSuffix(fhir.ChildValue(c, "system"), "KBV_CS_AW_Koerperkenngroessen") {
			name = fhir.ChildValue(c, "code")
		}
	}
	if name == "" {
		name = display(r, "code")
	}
	value := join(" ", v(r, "valueQuantity/value"), v(r, "valueQuantity/unit"))
	return name + "|" + value + "|" + fact("vom", germanDate(v(r, "effectiveDateTime")))
}

var claimKinds = map[string]string{
	"Abrechnung_Vorlaeufig": "vorläufig", "Vertragsaerztlich": "vertragsärztlich", "Privat": "privat", "BG": "BG",
	"HzV_BesondereVersorgung_Selektiv": "HzV/Selektivvertrag", "Privattarif_Postbeamte": "Privattarif Postbeamte",
	"Privattarif_KVB": "Privattarif KVB", "Privattarif_Beihilfeergaenzung": "Privattarif Beihilfeergänzung",
}

func claimSummary(r *etree.Element) string {
	kind := v(r, "subType/coding/code")
	if k, ok := claimKinds[kind]; ok {
		kind = k
	}
	return kind + "|" + fact("Ziffer", v(r, "item/productOrService/coding/code"))
}

func documentSummary(r *etree.Element) string {
	return join(" ", v(r, "content/attachment/title"), v(r, "description")) + "|" + fact("Typ", v(r, "content/attachment/contentType"))
}

func medicationSummary(r *etree.Element) string {
	return display(r, "code") + "|" + fact("PZN", identifierPZN(r))
}

func identifierPZN(r *etree.Element) string {
	for _, c := range findAll(r, "code/coding") {
		if strings.HasSuffix(fhir.ChildValue(c, "system"), "/pzn") {
			return fhir.ChildValue(c, "code")
		}
	}
	return ""
}

func medicationStatementSummary(r *etree.Element) string {
	return display(r, "medicationCodeableConcept") + "|" + fact("Medikament", v(r, "medicationReference/reference"))
}

func medicationRequestSummary(r *etree.Element) string {
	return display(r, "medicationCodeableConcept") + "|" + fact("vom", germanDate(v(r, "authoredOn"))) + "|" + fact("Medikament", v(r, "medicationReference/reference"))
}

func provenanceSummary(r *etree.Element) string {
	return "|" + fact("zu", strings.Join(all(r, "target/reference"), ", "))
}
