package kbv

import (
	"github.com/redclone/red/fhir"
)

// Claim: the billing of a case. KBV_PR_AW_Abrechnung_Vorlaeufig carries the fee items (GOPs) of
// the practice; KBV_PR_AW_Abrechnung_vertragsaerztlich and _privat are the settled billings that
// point to it. The profiles are checked by fhir/profile; here are the rules every Claim meets,
// what the profile tables do not cover yet, and plausibility.

func init() { register("Claim", claim) }

const (
	claimVorlaeufig = "KBV_PR_AW_Abrechnung_Vorlaeufig"
	claimVertrag    = "KBV_PR_AW_Abrechnung_vertragsaerztlich"
	claimPrivat     = "KBV_PR_AW_Abrechnung_privat"

	tsvgCS               = kbvCS + "KBV_CS_AW_TSVG_Vermittlungsart"
	beihilfeUmlaut       = "Privattarif_Beihilfeergänzung"
	entschaedigungsartCS = kbvCS + "KBV_CS_AW_Entschaedigungsart"
	auslagenartCS        = kbvCS + "KBV_CS_AW_Abrechnung_Auslagenart"

	extBegruendung   = kbvSD + "KBV_EX_AW_Abrechnung_spezielle_Abrechnungsbegruendung"
	extVertragZusatz = kbvSD + "KBV_EX_AW_Abrechnung_vertragsaerztlich_Zusatzinformation"
	extMahnung       = kbvSD + "KBV_EX_AW_Abrechnung_Mahnung"
)

var (
	// privatArten is KBV_VS_AW_Abrechnung_Art_Privat (plus the umlaut spelling it uses).
	privatArten = codes("Privat", "Privattarif_Postbeamte", "Privattarif_KVB", "Privattarif_Beihilfeergaenzung", beihilfeUmlaut)

	claimStatus = codes("active", "cancelled", "draft", "entered-in-error")
	claimUse    = codes("claim", "preauthorization", "predetermination")

	tsvgVermittlungsarten = codes("1", "2", "3", "4", "5")

	// kostentraegerAbrechnungsbereiche is KBV_VS_AW_Kostentraeger-Abrechnungsbereich (KVDT FK 4106).
	kostentraegerAbrechnungsbereiche = map[string]CodeSet{
		kbvCS + "KBV_CS_AW_Kostentraeger-Abrechnungsbereich": codes("90"),
		kbvCS + "KBV_CS_SFHIR_KTS_KTABRECHNUNGSBEREICH":      codes("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "11"),
	}
)

func claim(c *Cursor) {
	// FHIR core: the elements every Claim has, their code lists and number formats.
	c.Require("status", "type", "use", "patient", "created", "provider", "priority", "insurance")
	codeIn(c.One("status"), claimStatus, "claim status")
	codeIn(c.One("use"), claimUse, "claim use")
	notFuture(c.One("created"), false)
	periodPast(c.One("billablePeriod"), true)
	if code := firstChild(c, "subType", "coding", "code"); code.Value() == beihilfeUmlaut {
		code.Warnf(fhir.CodeValue, "the code system spells this code Privattarif_Beihilfeergaenzung")
	}
	for _, ins := range c.All("insurance") {
		ins.Require("sequence", "focal", "coverage")
		positiveWhole(ins.One("sequence"))
	}
	for _, item := range c.All("item") {
		item.Require("sequence", "productOrService")
		positiveWhole(item.One("sequence"))
		decimalValue(firstChild(item, "quantity", "value"))
		decimalValue(firstChild(item, "unitPrice", "value"))
		positiveDecimal(item.One("factor"), "the factor")
		decimalValue(firstChild(item, "net", "value"))
		for _, detail := range item.All("detail") {
			detail.Require("sequence", "productOrService")
			positiveWhole(detail.One("sequence"))
			decimalValue(firstChild(detail, "unitPrice", "value"))
		}
	}
	name, foreign := pickProfile(c, claimVorlaeufig, claimVertrag, claimPrivat)
	switch {
	case foreign || name == "":
		refTo(c.One("patient"), "Patient")
		refTo(c.One("provider"), "PractitionerRole", "Practitioner", "Organization")
		if cov := firstChild(c, "insurance", "coverage"); cov.Exists() && cov.Count("reference") > 0 {
			refTo(cov, "Coverage")
		}
	case name == claimVorlaeufig:
		vorlaeufig(c)
	case name == claimVertrag:
		// The slice zusatzinformationen takes the cardinality its extension definition states
		// (1..1): until the profile tables apply it, it is required here.
		if len(c.Extension(extVertragZusatz)) == 0 {
			absentAt(c, ".extension").Errorf(fhir.CodeRequired, "the billing details (extension %s) are required", extVertragZusatz)
		}
		// kostentraeger-Abrechnungsbereich binds KBV_VS_AW_Kostentraeger-Abrechnungsbereich (until
		// the profile tables cover it: it is not among the value sets read).
		for _, z := range c.Extension(extVertragZusatz) {
			for _, x := range z.Extension("kostentraeger-Abrechnungsbereich") {
				for _, cd := range firstChild(x, "valueCodeableConcept").All("coding") {
					codingIn(cd, kostentraegerAbrechnungsbereiche)
				}
			}
		}
	case name == claimPrivat:
		privat(c)
	}
}

// vorlaeufig: KBV_PR_AW_Abrechnung_Vorlaeufig, the fee items of the practice.
func vorlaeufig(c *Cursor) {
	for _, item := range c.All("item") {
		positiveDecimal(firstChild(item, "quantity", "value"), "the multiplier")
		for _, e := range item.Extension(extBegruendung) {
			begruendung(e)
		}
	}
}

// begruendung checks what the profile tables do not of spezielle_Abrechnungsbegruendung: the
// TSS placement's code (until the profile tables cover KBV_VS_AW_TSVG_Vermittlungsart: its code
// system is not among the definitions read), plausible dates and numbers.
func begruendung(e *Cursor) {
	for _, url := range []string{"jahr_der_letzten_Krebsfrueherkennung", "tsvg_Kontaktaufnahme"} {
		for _, x := range e.Extension(url) {
			notFuture(x.One("valueDate"), true)
		}
	}
	for _, x := range e.Extension("prozent_der_Leistung") {
		positiveDecimal(firstChild(x, "valueQuantity", "value"), "the percentage")
	}
	for _, x := range e.Extension("kontrast_Arzneimittel") {
		positiveDecimal(firstChild(x, "valueQuantity", "value"), "the amount of contrast agent")
	}
	for _, x := range e.Extension("asv-Teamnr") {
		x.One("valueIdentifier").Identifier()
	}
	for _, x := range e.Extension("tsvg_Vermittler_FA") {
		if id := firstChild(x, "valueReference", "identifier"); id.Exists() {
			id.Identifier()
		}
	}
	for _, x := range e.Extension("tsvg_Vermittlungsart") {
		for _, cd := range firstChild(x, "valueCodeableConcept").All("coding") {
			codingIn(cd, map[string]CodeSet{tsvgCS: tsvgVermittlungsarten})
		}
	}
}

// privat: KBV_PR_AW_Abrechnung_privat, a private invoice.
func privat(c *Cursor) {
	// The subType binds KBV_VS_AW_Abrechnung_Art_Privat, the items' modifiers the Entschädigungs-
	// and Auslagenarten (until the profile tables cover these value sets: they are not among the
	// definitions read, or not expandable).
	if code := firstChild(c, "subType", "coding", "code"); code.Exists() && !privatArten[code.Value()] {
		code.Errorf(fhir.CodeValue, "a private invoice is of kind Privat, Privattarif_Postbeamte, Privattarif_KVB or Privattarif_Beihilfeergaenzung")
	}
	for _, item := range c.All("item") {
		positiveDecimal(firstChild(item, "quantity", "value"), "the quantity")
		mod := firstChild(item, "modifier", "coding")
		switch firstChild(item, "productOrService", "coding", "code").Value() {
		case "Entschaedigung":
			codingIn(mod, map[string]CodeSet{entschaedigungsartCS: codes("Reisekosten", "Wegegeld")})
		case "Auslagen":
			codingIn(mod, map[string]CodeSet{auslagenartCS: codes("Medikamente_Arzneimittel", "Material_Verbandsmittel_Radiopharmaka", "Porto_Versandkosten")})
		}
	}
	if id := firstChild(c, "insurer", "identifier"); id.Exists() {
		id.Identifier()
	}
	for _, m := range c.Extension(extMahnung) {
		for _, url := range []string{"mahndatum", "zahldatum"} {
			for _, x := range m.Extension(url) {
				notFuture(x.One("valueDateTime"), false)
			}
		}
	}
}
