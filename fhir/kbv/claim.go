package kbv

import (
	"github.com/redclone/red/fhir"
)

// Claim: the billing of a case. KBV_PR_AW_Abrechnung_Vorlaeufig carries the fee items (GOPs) of
// the practice; KBV_PR_AW_Abrechnung_vertragsaerztlich and _privat are the settled billings that
// point to it. The rules are chosen by meta.profile; a Claim naming none of them (or another
// billing profile such as BG or HzV) gets the rules all three share.

func init() { register("Claim", claim) }

const (
	claimVorlaeufig = "KBV_PR_AW_Abrechnung_Vorlaeufig"
	claimVertrag    = "KBV_PR_AW_Abrechnung_vertragsaerztlich"
	claimPrivat     = "KBV_PR_AW_Abrechnung_privat"

	kbvNS            = "https://fhir.kbv.de/NamingSystem/"
	abrechnungArtCS  = kbvCS + "KBV_CS_AW_Abrechnung_Art"
	itemKategorieCS  = kbvCS + "KBV_CS_AW_Abrechnung_Item_Kategorie"
	infoKategorieCS  = kbvCS + "KBV_CS_AW_Abrechnung_Information_Kategorie"
	tsvgCS           = kbvCS + "KBV_CS_AW_TSVG_Vermittlungsart"
	beihilfeUmlaut   = "Privattarif_Beihilfeergänzung"
	asvTeamnummer    = "http://fhir.de/NamingSystem/asv/teamnummer"
	bsnrNS           = kbvNS + "KBV_NS_Base_BSNR"
	ikNamingSystemAW = "http://fhir.de/NamingSystem/arge-ik/iknr"

	extSonstigeGOP       = kbvSD + "KBV_EX_AW_Abrechnung_Sonstige_GOP"
	extItemKontext       = kbvSD + "KBV_EX_AW_Abrechnung_Item_Kontext"
	extBegruendung       = kbvSD + "KBV_EX_AW_Abrechnung_spezielle_Abrechnungsbegruendung"
	extVertragZusatz     = kbvSD + "KBV_EX_AW_Abrechnung_vertragsaerztlich_Zusatzinformation"
	extPrivatZusatz      = kbvSD + "KBV_EX_AW_Privatabrechnung_Zusatzinformationen"
	extMahnung           = kbvSD + "KBV_EX_AW_Abrechnung_Mahnung"
	extRechnungsempf     = kbvSD + "KBV_EX_AW_Privatabrechnung_Rechnungsempfaenger"
	extKundennummer      = kbvSD + "KBV_EX_AW_Abrechnung_Kundennummer_Abrechungsdienst" // sic
	extKontoverbindung   = kbvSD + "KBV_EX_AW_Privatabrechnung_Kontoverbindung"
	claimTypeCS          = "http://terminology.hl7.org/CodeSystem/claim-type"
	processPriorityCS    = "http://terminology.hl7.org/CodeSystem/processpriority"
	payeeTypeCS          = "http://terminology.hl7.org/CodeSystem/payeetype"
	identifiertypAbrCS   = kbvCS + "KBV_CS_AW_Abrechnung_Identifiertyp"
	entschaedigungsartCS = kbvCS + "KBV_CS_AW_Entschaedigungsart"
	auslagenartCS        = kbvCS + "KBV_CS_AW_Abrechnung_Auslagenart"
	mahnungCS            = kbvCS + "KBV_CS_AW_Abrechnung_Mahnung"
)

var (
	// abrechnungsarten is KBV_CS_AW_Abrechnung_Art (plus the umlaut spelling the private value set uses).
	abrechnungsarten = codes("Vertragsaerztlich", "BG", "HzV_BesondereVersorgung_Selektiv", "Privat",
		"Privattarif_Postbeamte", "Privattarif_KVB", "Privattarif_Beihilfeergaenzung", "Abrechnung_Vorlaeufig", beihilfeUmlaut)
	// privatArten is KBV_VS_AW_Abrechnung_Art_Privat.
	privatArten = codes("Privat", "Privattarif_Postbeamte", "Privattarif_KVB", "Privattarif_Beihilfeergaenzung", beihilfeUmlaut)

	claimStatus = codes("active", "cancelled", "draft", "entered-in-error")
	claimUse    = codes("claim", "preauthorization", "predetermination")

	// feeSchedules are the productOrService.coding slices of a GOP: one per fee schedule.
	feeSchedules = map[string]CodeSet{
		kbvNS + "KBV_NS_AW_BMAE":         nil,
		kbvNS + "KBV_NS_AW_E-GO":         nil,
		kbvNS + "KBV_NS_Base_EBM":        nil,
		kbvNS + "KBV_NS_AW_GOAE":         nil,
		kbvNS + "KBV_NS_AW_UV_GOAE":      nil,
		kbvNS + "KBV_NS_AW_HZV_Selektiv": nil,
	}
	tsvgVermittlungsarten = codes("1", "2", "3", "4", "5")

	// The key tables behind the vertragsärztlich billing details (KVDT FK 4106, 4122, 4239).
	kostentraegerAbrechnungsbereiche = map[string]CodeSet{
		kbvCS + "KBV_CS_AW_Kostentraeger-Abrechnungsbereich": codes("90"),
		kbvCS + "KBV_CS_SFHIR_KTS_KTABRECHNUNGSBEREICH":      codes("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "11"),
	}
	abrechnungsgebiete = codes("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "14", "15", "80")
	scheinarten        = codes("00", "0101", "0102", "0103", "0104", "20", "21", "23", "24", "26", "27", "28", "30", "31",
		"32", "41", "42", "43", "44", "45", "46")

	privatItemKinds = codes("Entschaedigung", "Auslagen", "Besondere_Kosten")
)

func claim(c *Cursor) {
	name, foreign := pickProfile(c, claimVorlaeufig, claimVertrag, claimPrivat)
	claimCore(c, !foreign)
	switch name {
	case claimVorlaeufig:
		vorlaeufig(c)
	case claimVertrag:
		vertragsaerztlich(c)
	case claimPrivat:
		privat(c)
	default:
		refTo(c.One("provider"), "PractitionerRole", "Practitioner", "Organization")
		if cov := firstChild(c, "insurance", "coverage"); cov.Exists() {
			if cov.Count("reference") == 0 && cov.Count("display") == 0 && cov.Count("identifier") == 0 {
				cov.Require("reference")
			}
			if cov.Count("reference") > 0 {
				refTo(cov, "Coverage")
			}
		}
		for _, item := range c.All("item") {
			for _, coding := range item.One("productOrService").All("coding") {
				coding.Require("system", "code")
			}
			for _, enc := range item.All("encounter") {
				refTo(enc, "Encounter")
			}
			decimalValue(item.One("quantity").One("value"))
			moneyValue(item.One("unitPrice"), false)
			decimalValue(item.One("factor"))
			moneyValue(item.One("net"), false)
		}
	}
}

// claimCore checks what all billing profiles share; strict adds the elements the three AW
// profiles exclude.
func claimCore(c *Cursor, strict bool) {
	c.Require("status", "type", "subType", "use", "patient", "created", "provider", "priority", "insurance")
	codeIn(c.One("status"), claimStatus, "claim status")
	codeIn(c.One("use"), claimUse, "claim use")
	singleCoding(c.One("type"), claimTypeCS, codes("professional"))
	subType := c.One("subType")
	singleCoding(subType, abrechnungArtCS, abrechnungsarten)
	if code := firstChild(subType, "coding", "code"); code.Value() == beihilfeUmlaut {
		code.Warnf(fhir.CodeValue, "the code system spells this code Privattarif_Beihilfeergaenzung")
	}
	singleCoding(c.One("priority"), processPriorityCS, codes("normal"))
	refTo(c.One("patient"), "Patient")
	notFuture(c.One("created"), false)

	ins := c.One("insurance") // reports a second insurance
	ins.Require("sequence", "focal", "coverage")
	positiveWhole(ins.One("sequence"))
	booleanValue(ins.One("focal"))
	ins.One("coverage") // reports a second coverage; the profiles check its content

	for _, item := range c.All("item") {
		item.Require("sequence", "productOrService")
		positiveWhole(item.One("sequence"))
		for _, detail := range item.All("detail") {
			detail.Require("sequence", "productOrService")
			positiveWhole(detail.One("sequence"))
		}
	}
	if strict {
		c.Forbid("enterer", "fundsReserve", "prescription", "originalPrescription", "facility", "careTeam",
			"diagnosis", "procedure", "accident", "total")
		ins.Forbid("identifier", "businessArrangement", "preAuthRef", "claimResponse")
	}
}

// subTypeIs checks the fixed subType code of a profile.
func subTypeIs(c *Cursor, code string) {
	fixedValue(firstChild(c, "subType", "coding", "code"), code, "it is the kind of billing this profile describes")
}

// vorlaeufig: KBV_PR_AW_Abrechnung_Vorlaeufig, the fee items of the practice.
func vorlaeufig(c *Cursor) {
	subTypeIs(c, "Abrechnung_Vorlaeufig")
	fixedValue(firstChild(c, "use"), "predetermination", "the provisional billing is a predetermination")
	// Invariant activeOrInactive.
	if s := firstChild(c, "status"); s.Exists() && s.Value() != "active" && s.Value() != "cancelled" && s.Value() != "draft" {
		s.Errorf(fhir.CodeInvariant, "the provisional billing is active, cancelled or draft")
	}
	c.Forbid("identifier", "billablePeriod", "insurer", "related", "referral", "payee", "supportingInfo",
		"implicitRules", "language", "contained")
	refTo(c.One("provider"), "PractitionerRole", "Practitioner", "Organization")

	ins := firstChild(c, "insurance")
	fixedValue(firstChild(ins, "focal"), "true", "the one insurance of the provisional billing is the focal one")
	if cov := firstChild(ins, "coverage"); cov.Exists() {
		cov.Forbid("reference", "identifier", "type")
		cov.Require("display")
		fixedValue(cov.One("display"), "N.N.", "the insurer of a provisional billing is not yet known")
	}

	c.Require("item")
	for _, item := range c.All("item") {
		gop(item)
	}
}

// gop checks one fee item of the provisional billing.
func gop(item *Cursor) {
	item.Forbid("careTeamSequence", "diagnosisSequence", "procedureSequence", "informationSequence", "revenue",
		"modifier", "programCode", "servicedDate", "servicedPeriod", "locationCodeableConcept", "locationAddress",
		"locationReference", "udi", "bodySite", "subSite")
	extValue(extensionOnce(item, extAbrechnungsrelevant, "gop_abrechnungsrelevant", true), "valueBoolean")
	if e := extensionOnce(item, extBegruendung, "spezielle_Abrechnungsbegruendung", false); e.Exists() {
		begruendung(e)
	}
	if e := extensionOnce(item, extItemKontext, "kontext", false); e.Exists() {
		for _, url := range []string{"link_zu_genetische_Untersuchung", "link_zu_ambulante_Operation"} {
			for _, link := range e.Extension(url) {
				refTo(extValue(link, "valueReference"))
			}
		}
	}

	item.Require("category", "encounter")
	singleCoding(item.One("category"), itemKategorieCS, codes("GOP"))

	pos := item.One("productOrService")
	coding := pos.One("coding")
	codingIn(coding, feeSchedules)
	coding.One("code").NotEmpty()
	sonstige := extensionOnce(pos, extSonstigeGOP, "sonstige_GOP", false)
	if sonstige.Exists() {
		v := extValue(sonstige, "valueCoding")
		v.Require("system", "version", "code", "display")
		v.Forbid("userSelected")
	}
	if pos.Exists() && !coding.Exists() && !sonstige.Exists() {
		absentAt(pos, ".coding").Errorf(fhir.CodeRequired, "the fee item needs its code: a coding from EBM, GOÄ, UV-GOÄ, BMÄ, E-GO or HzV, or the extension sonstige_GOP")
	}

	if q := item.One("quantity"); q.Exists() {
		q.Require("value")
		positiveDecimal(q.One("value"), "the multiplier")
		fixedValue(q.One("unit"), "1", "the multiplier has no unit")
		fixedValue(q.One("system"), ucum, "the multiplier is a UCUM quantity")
		fixedValue(q.One("code"), "1", "the multiplier has no unit")
	}
	moneyValue(item.One("unitPrice"), true)
	positiveDecimal(item.One("factor"), "the factor")
	moneyValue(item.One("net"), false)
	refTo(item.One("encounter"), "Encounter")

	for _, d := range item.All("detail") {
		d.Forbid("revenue", "category", "modifier", "programCode", "quantity", "factor", "net", "subDetail")
		d.Require("unitPrice", "udi")
		moneyValue(d.One("unitPrice"), true)
		refTo(d.One("udi"), "Device")
		for _, coding := range d.One("productOrService").All("coding") {
			coding.Require("system", "code")
		}
	}
}

// begruendung checks the sub-extensions of spezielle_Abrechnungsbegruendung.
func begruendung(e *Cursor) {
	for _, url := range []string{"art_der_Untersuchung", "name_des_Arztes", "freie_Begruendung", "gop_Zusatz", "patientennummer_EDV_des_FEK-Bogens"} {
		extValue(subExtension(e, url, false), "valueString").NotEmpty()
	}
	for _, organ := range e.Extension("betreffendes_Organ") {
		extValue(organ, "valueString").NotEmpty()
	}
	for _, url := range []string{"poststationaer_erbrachte_Leistung", "gop_fuer_bezugsperson", "wiederholungsuntersuchung"} {
		extValue(subExtension(e, url, false), "valueBoolean")
	}
	notFuture(extValue(subExtension(e, "jahr_der_letzten_Krebsfrueherkennung", false), "valueDate"), true)
	notFuture(extValue(subExtension(e, "tsvg_Kontaktaufnahme", false), "valueDate"), true)

	if q := extValue(subExtension(e, "prozent_der_Leistung", false), "valueQuantity"); q.Exists() {
		q.Require("value")
		positiveDecimal(q.One("value"), "the percentage")
		fixedValue(q.One("unit"), "Prozent", "the share of the service is a percentage")
		fixedValue(q.One("system"), ucum, "the unit is a UCUM unit")
		fixedValue(q.One("code"), "%", "the share of the service is a percentage")
	}
	if q := extValue(subExtension(e, "kontrast_Arzneimittel", false), "valueQuantity"); q.Exists() {
		q.Forbid("comparator")
		q.Require("value", "unit", "code")
		positiveDecimal(q.One("value"), "the amount of contrast agent")
		fixedValue(q.One("system"), ucum, "the unit is a UCUM unit")
	}
	if id := extValue(subExtension(e, "asv-Teamnr", false), "valueIdentifier"); id.Exists() {
		id.Forbid("use", "type", "period", "assigner")
		id.Require("system", "value")
		fixedValue(id.One("system"), asvTeamnummer, "it is the ASV team number")
		id.Identifier()
	}
	singleCoding(extValue(subExtension(e, "tsvg_Vermittlungsart", false), "valueCodeableConcept"), tsvgCS, tsvgVermittlungsarten)
	if ref := extValue(subExtension(e, "tsvg_Vermittler_FA", false), "valueReference"); ref.Exists() {
		ref.Forbid("type", "display")
		ref.Require("identifier")
		if id := ref.One("identifier"); id.Exists() {
			id.Require("system", "value")
			fixedValue(id.One("system"), bsnrNS, "the referring practice is given by its BSNR")
			id.Identifier()
		}
	}
}

// settled checks what the vertragsärztlich and private billing share.
func settled(c *Cursor) {
	fixedValue(firstChild(c, "use"), "claim", "a settled billing is a claim")
	refTo(c.One("provider"), "PractitionerRole")
	c.Require("related")
	rel := c.One("related")
	rel.Forbid("relationship", "reference")
	requiredRef(rel, "claim", "Claim")
	refTo(c.One("referral"), "ServiceRequest")
}

// vertragsaerztlich: KBV_PR_AW_Abrechnung_vertragsaerztlich, the statutory billing of a case.
func vertragsaerztlich(c *Cursor) {
	subTypeIs(c, "Vertragsaerztlich")
	settled(c)
	c.Forbid("identifier", "insurer", "payee", "item")
	periodPast(c.One("billablePeriod"), true)
	requiredRef(firstChild(c, "insurance"), "coverage", "Coverage")

	z := extensionOnce(c, extVertragZusatz, "zusatzinformationen", true)
	if z.Exists() {
		extValue(subExtension(z, "schein-ID", false), "valueString").NotEmpty()
		extValue(subExtension(z, "kennziffer-SA", false), "valueString").NotEmpty()
		if v := extValue(subExtension(z, "kostentraeger-Abrechnungsbereich", true), "valueCodeableConcept"); v.Exists() {
			v.Require("coding")
			codingIn(v.One("coding"), kostentraegerAbrechnungsbereiche)
		}
		singleCoding(extValue(subExtension(z, "abrechnungsgebiet", true), "valueCodeableConcept"), kbvCS+"KBV_CS_SFHIR_KBV_ABRECHNUNGSGEBIET", abrechnungsgebiete)
		singleCoding(extValue(subExtension(z, "scheinuntergruppe", true), "valueCodeableConcept"), kbvCS+"KBV_CS_SFHIR_KBV_SCHEINART", scheinarten)
		extValue(subExtension(z, "abklaerung_somatischer_Ursachen_vor_Aufnahme_einer_Psychotherapie", true), "valueBoolean")
		extValue(subExtension(z, "unfall_Unfallfolgen", true), "valueBoolean")
		extValue(subExtension(z, "anerkannte_Psychotherapie", false), "valueBoolean")
	}

	for _, si := range c.All("supportingInfo") {
		si.Forbid("code", "timingDate", "timingPeriod", "reason")
		si.Require("sequence", "category")
		positiveWhole(si.One("sequence"))
		singleCoding(si.One("category"), infoKategorieCS, codes("Ringversuchszertifikat", "Leistungsgenehmingung"))
		refTo(valueX(si, true, "valueReference"))
	}
}

// privat: KBV_PR_AW_Abrechnung_privat, a private invoice.
func privat(c *Cursor) {
	if code := firstChild(c, "subType", "coding", "code"); code.Exists() && abrechnungsarten[code.Value()] && !privatArten[code.Value()] {
		code.Errorf(fhir.CodeValue, "a private invoice is of kind Privat, Privattarif_Postbeamte, Privattarif_KVB or Privattarif_Beihilfeergaenzung")
	}
	settled(c)
	c.Forbid("billablePeriod")

	// The invoice number.
	c.Require("identifier")
	if id := c.One("identifier"); id.Exists() {
		id.Forbid("system", "use", "period", "assigner")
		id.Require("type", "value")
		singleCoding(id.One("type"), identifiertypAbrCS, codes("Rechnungsnummer"))
		id.One("value").NotEmpty()
	}

	refTo(extValue(extensionOnce(c, extRechnungsempf, "rechnungsempfaenger_Selbstzahler", true), "valueReference"), "Patient", "RelatedPerson")
	if z := extensionOnce(c, extPrivatZusatz, "zahlbetraege", false); z.Exists() {
		moneyValue(extValue(subExtension(z, "direktzahlungsbetrag", false), "valueMoney"), true)
		moneyValue(extValue(subExtension(z, "nachlass", false), "valueMoney"), false)
		for _, m := range z.Extension("minderungssatz") {
			moneyValue(extValue(m, "valueMoney"), true)
		}
	}
	for _, m := range c.Extension(extMahnung) {
		notFuture(extValue(subExtension(m, "mahndatum", true), "valueDateTime"), false)
		singleCoding(extValue(subExtension(m, "mahnstufe", true), "valueCodeableConcept"), mahnungCS, nil)
		moneyValue(extValue(subExtension(m, "mahngebuehr", true), "valueMoney"), true)
		notFuture(extValue(subExtension(m, "zahldatum", false), "valueDateTime"), false)
		moneyValue(extValue(subExtension(m, "zahlbetrag", false), "valueMoney"), true)
	}

	if ins := c.One("insurer"); ins.Exists() {
		ins.Forbid("type", "display")
		if ins.Count("reference") > 0 {
			refTo(ins, "Organization")
		}
		if e := extensionOnce(ins, extKundennummer, "kundennummer_Abrechnungsdienst", false); e.Exists() {
			extValue(e, "valueString").NotEmpty()
		}
		if id := ins.One("identifier"); id.Exists() {
			id.Forbid("use", "type", "period", "assigner")
			id.Require("system", "value")
			fixedValue(id.One("system"), ikNamingSystemAW, "the billing service is identified by its IK")
			id.Identifier()
		}
	}

	if p := c.One("payee"); p.Exists() {
		p.Forbid("party")
		p.Require("type")
		singleCoding(p.One("type"), payeeTypeCS, codes("provider"))
		if k := extensionOnce(p, extKontoverbindung, "kontoverbindung", false); k.Exists() {
			for _, url := range []string{"blz", "kontonummer", "iban", "bic"} {
				extValue(subExtension(k, url, false), "valueString").NotEmpty()
			}
		}
	}

	if si := c.One("supportingInfo"); si.Exists() {
		si.Forbid("timingDate", "timingPeriod", "reason")
		valueX(si, false)
		si.Require("sequence", "category", "code")
		positiveWhole(si.One("sequence"))
		if cat := si.One("category"); cat.Exists() {
			cat.Forbid("coding")
			cat.Require("text")
			fixedValue(cat.One("text"), "Privattarif_Sonstige", "additional private tariffs are marked so")
		}
		if code := si.One("code"); code.Exists() {
			code.Require("coding")
			if coding := code.One("coding"); coding.Exists() {
				coding.Forbid("version", "userSelected")
				coding.Require("code", "display")
			}
		}
	}

	if cov := firstChild(c, "insurance", "coverage"); cov.Exists() {
		cov.Forbid("type", "identifier")
		if cov.Count("reference") > 0 {
			refTo(cov, "Coverage")
		}
		fixedValue(cov.One("display"), "Selbstzahler", "a private invoice is paid by the patient")
	}

	for _, item := range c.All("item") {
		privatItem(item)
	}
}

// privatItem checks one item of a private invoice: travel costs, expenses or other costs.
func privatItem(item *Cursor) {
	item.Forbid("careTeamSequence", "diagnosisSequence", "procedureSequence", "informationSequence", "revenue",
		"category", "programCode", "servicedDate", "servicedPeriod", "locationCodeableConcept", "locationAddress",
		"locationReference", "net", "udi", "bodySite", "subSite", "detail")
	item.Require("quantity", "encounter")
	pos := item.One("productOrService")
	singleCoding(pos, itemKategorieCS, privatItemKinds)
	kind := firstChild(pos, "coding", "code").Value()

	q := item.One("quantity")
	if q.Exists() {
		q.Require("value", "code")
		positiveDecimal(q.One("value"), "the quantity")
		fixedValue(q.One("unit"), "1", "the quantity has no unit")
		fixedValue(q.One("system"), ucum, "the quantity is a UCUM quantity")
	}
	moneyValue(item.One("unitPrice"), true)
	refTo(item.One("encounter"), "Encounter")

	switch kind {
	case "Entschaedigung":
		pos.Forbid("text")
		item.Require("modifier")
		singleCoding(item.One("modifier"), entschaedigungsartCS, codes("Reisekosten", "Wegegeld"))
	case "Auslagen":
		pos.Forbid("text")
		item.Require("modifier")
		singleCoding(item.One("modifier"), auslagenartCS, codes("Medikamente_Arzneimittel", "Material_Verbandsmittel_Radiopharmaka", "Porto_Versandkosten"))
		fixedValue(q.One("code"), "1", "expenses are counted without unit")
	case "Besondere_Kosten":
		pos.Require("text")
		pos.One("text").NotEmpty()
		item.Forbid("modifier")
		fixedValue(q.One("code"), "1", "other costs are counted without unit")
	}
}
