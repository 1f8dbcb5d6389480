package kbv

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/redclone/red/fhir"
)

// DocumentReference: KBV_PR_AW_Anlage, a document (PDF, image, form, data file) in the patient
// file. RED carries the document itself base64-encoded in content.attachment.data (the profile
// itself wants a url instead); both are accepted. The profile is checked by fhir/profile; here are
// the rules every document meets, what the profile tables do not cover yet, and plausibility.

func init() { register("DocumentReference", documentReference) }

var (
	// anlagetypen is KBV_VS_AW_Anlagetyp: all of KBV_CS_AW_Anlagetyp, all of
	// KBV_CS_VoS_RezeptTyp (codes not published with the AWS, so any code) and two codes of
	// KBV_CS_VoS_DokumentTyp.
	anlagetypen = map[string]CodeSet{
		kbvCS + "KBV_CS_AW_Anlagetyp": codes(
			"Roentgenbild", "CT-Bild", "MRT-Bild",
			"KV-Muster_1", "KV-Muster_2", "KV-Muster_3", "KV-Muster_4", "KV-Muster_5", "KV-Muster_6", "KV-Muster_7",
			"KV-Muster_8", "KV-Muster_8a", "KV-Muster_9", "KV-Muster10", "KV-Muster10A", "KV-Muster10L", "KV-Muster10C",
			"KV-Muster_11", "KV-Muster_12", "KV-Muster_13", "KV-Muster_14", "KV-Muster_15", "KV-Muster_18", "KV-Muster_19",
			"KV-Muster_20", "KV-Muster_21", "KV-Muster_22", "KV-Muster_25", "KV-Muster_26", "KV-Muster_27", "KV-Muster_28",
			"KV-Muster_30", "KV-Muster_36", "KV-Muster_39", "KV-Muster_40", "KV-Muster_50", "KV-Muster_51", "KV-Muster_52",
			"KV-Muster_53", "KV-Muster_55", "KV-Muster_56", "KV-Muster_61", "KV-Muster_63", "KV-Muster_70", "KV-Muster_70A",
			"KV-Muster_PTV1", "KV-Muster_PTV2", "KV-Muster_PTV11", "KV-Muster_PTV12",
			"EDMP_DiabetesM1", "EDMP_DiabetesM2", "EDMP_KHK", "EDMP_AsthmaBronchiale", "EDMP_COPD", "EDMP_Brustkrebs",
			"EDMP_Hernzinsuffizienz",
			"EDoku_QSHGV", "EDoku_QSHGVK", "EDoku_QSKE", "EDoku_QSHLT", "EDoku_QSMG", "EDoku_sQS_PCI", "EDoku_Dialyse",
			"EDoku_eHKS", "EDoku_FEK", "EDoku_HKS", "EDoku_QSZZ",
			"PB_oKFE", "PB_oKFE ", // the code system writes it with a trailing blank
			"KVDT", "KADT", "SADT", "LDT_Datei", "GDT_Datei", "ADT_Datei", "Arztbrief", "PAD", "PADNext", "DALE_UV",
			"Einwilligung", "DPE", "NFD", "NDT", "Rechnung", "DGUV-Formular", "Behandlungsbaustein_Textvorlage",
			"MIO_Impfpass", "MIO_ZAEB", "KBV_EAU", "MIO_ERezept", "VOS_Bundle_VoS_PVS", "VOS_Bundle_PVS_VoS",
			"EPA_Dokument", "Sonstige_Dokumente", "Sonstige",
			"KBV_PR_AW_Betriebsstaette", "KBV_PR_AW_Report_Import", "KBV_PR_AW_Hersteller_Software",
			"KBV_PR_AW_Mitarbeiter", "KBV_PR_AW_Patient", "KBV_PR_AW_Provenienz", "KBV_PR_AW_Begegnung",
			"KBV_PR_AW_Hausbesuch", "KBV_PR_AW_Patientenverfuegung", "KBV_PR_AW_Notfallbenachrichtigter",
			"KBV_PR_AW_Vorsorgevollmacht", "KBV_PR_AW_Observation_Raucherstatus", "KBV_PR_AW_Observation_Puls",
			"KBV_PR_AW_Observation_Koerpertemperatur", "KBV_PR_AW_Observation_Hueftumfang",
			"KBV_PR_AW_Observation_Blutdruck", "KBV_PR_AW_Observation_Bauchumfang",
			"KBV_PR_AW_Observation_Schwangerschaft", "KBV_PR_AW_Untersuchung", "KBV_PR_AW_Unfall_Ort",
			"KBV_PR_AW_Therapie", "KBV_PR_AW_Selektivvertrag", "KBV_PR_AW_Ringversuchszertifikat", "KBV_PR_AW_Termin",
			"KBV_PR_AW_Organisation", "KBV_PR_AW_Observation_Befund", "KBV_PR_AW_Observation_Anamnese",
			"KBV_PR_AW_Behandlungsbaustein_Diagnose", "KBV_PR_AW_Behandlungsbaustein_Definition",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_2020", "KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_2020",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Empfehlung",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_Zytologischer_Befund_Diverse_2020",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Testergebnis_2020",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_Anamnese_Hormonanwendung_2020", "KBV_PR_AW_Unfall",
			"KBV_PR_AW_Notfall", "KBV_PR_AW_Leistungsgenehmigung_Psychotherapie",
			"KBV_PR_AW_Leistungsanfrage_Heilmittel", "KBV_PR_AW_Kur_Kurverlaengerung", "KBV_PR_AW_Kur",
			"KBV_PR_AW_Kur_Antrag", "KBV_PR_AW_Kur_Kurgenehmigung", "KBV_PR_AW_Krebsfrueherkennung_Maenner_Befund_Diverse",
			"KBV_PR_AW_Krebsfrueherkennung_Maenner_Auftrag", "KBV_PR_AW_Krebsfrueherkennung_Maenner_Anamnese_Diverse",
			"KBV_PR_AW_Krebsfrueherkennung_Maenner", "KBV_PR_AW_Krebsfrueherkennung_Frauen", "KBV_PR_AW_Bezugsperson",
			"KBV_PR_AW_Behandlung_im_Auftrag_Ueberweisung", "KBV_PR_AW_Allergie", "KBV_PR_AW_Verordnung_Hilfsmittel",
			"KBV_PR_AW_Verordnung_Heilmittel", "KBV_PR_AW_Verordnung_Arbeitsunfaehigkeit",
			"KBV_PR_AW_Leistungsgenehmigung_Heilmittel", "KBV_PR_AW_Krankenbefoerderung_42019",
			"KBV_PR_AW_Krankenbefoerderung", "KBV_PR_AW_Dauermedikation", "KBV_PR_AW_Diagnose",
			"KBV_PR_AW_Behandlungsbaustein_Verordnung", "KBV_PR_AW_Ambulante_Operation_General",
			"KBV_PR_AW_Ambulante_Operation", "KBV_PR_AW_Krebsfrueherkennung_Frauen_HPV_HR_Impfung_2020",
			"KBV_PR_AW_Anforderung_Sprechstundenbedarf", "KBV_PR_AW_Abrechnung_vertragsaerztlich",
			"KBV_PR_AW_Abrechnung_HzV_BesondereVersorgung_Selektiv", "KBV_PR_AW_Person",
			"KBV_PR_AW_Weiterbehandlung_durch", "KBV_PR_AW_Verordnung_Arzneimittel", "KBV_PR_AW_Medikament",
			"KBV_PR_AW_Behandelnder", "KBV_PR_AW_Material_Sache", "KBV_PR_AW_Leistungsanfrage_Psychotherapie",
			"KBV_PR_AW_Gesundheitspass", "KBV_PR_AW_Genetische_Untersuchung", "KBV_PR_AW_Betriebsstaette_Ort",
			"KBV_PR_AW_Behandlungsbaustein_Textvorlage", "KBV_PR_AW_Behandlungsbaustein_Sonstige",
			"KBV_PR_AW_Behandlungsbaustein_OMIMCode", "KBV_PR_AW_Behandlungsbaustein_Leistungsziffern",
			"KBV_PR_AW_Hilfsmittel", "KBV_PR_AW_Krankenbefoerderung_Befoerderungsmittel",
			"KBV_PR_AW_Krebsfrueherkennung_Frauen_Auftrag_2020", "KBV_PR_AW_Impfung", "KBV_PR_AW_Abrechnung_privat",
			"KBV_PR_AW_BehandelnderFunktion", "KBV_PR_AW_Abrechnung_BG", "KBV_PR_AW_Ueberweisung_KH_Einweisung",
			"KBV_PR_AW_Krankenversicherungsverhaeltnis", "KBV_PR_AW_Stationaere_Behandlung", "KBV_PR_AW_Hausbesuch_Ort",
			"KBV_PR_AW_Abrechnung_Vorlaeufig",
		),
		kbvCS + "KBV_CS_VoS_RezeptTyp":   nil,
		kbvCS + "KBV_CS_VoS_DokumentTyp": codes("BMP_eMP", "Medikationsplan"),
	}

	documentStatus = codes("current", "superseded", "entered-in-error")

	mimeType = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*(\s*;.*)?$`)
)

func documentReference(c *Cursor) {
	// FHIR core: status and content are required, status from its code list.
	c.Require("status", "content")
	codeIn(c.One("status"), documentStatus, "document status")
	for _, content := range c.All("content") {
		content.Require("attachment")
		anlageAttachment(content.One("attachment"))
	}
	notFuture(c.One("date"), false)
	name, foreign := pickProfile(c, "KBV_PR_AW_Anlage")
	if foreign || name == "" {
		refTo(c.One("subject"), "Patient")
		return
	}

	// KBV_PR_AW_Anlage binds type to KBV_VS_AW_Anlagetyp (until the profile tables cover it: the
	// value set is not among the definitions read).
	codingIn(firstChild(c, "type", "coding"), anlagetypen)

	// The invariants SpezifikationsVersionKBVMuster, -DPE and -NFD hold for a form without
	// masterIdentifier (an empty result, as FHIRPath reads it); the KBV's validator reads that as
	// a violation.
	if typeCoding := firstChild(c, "type", "coding"); typeCoding.One("system").Value() == kbvCS+"KBV_CS_AW_Anlagetyp" {
		code := typeCoding.One("code").Value()
		master := c.One("masterIdentifier")
		switch {
		case master.Exists():
		case strings.HasPrefix(code, "KV-Muster"):
			master.Errorf(fhir.CodeInvariant, "masterIdentifier is required: for a KBV form the specification version is written like 1Q2024 (quarter 1 to 4, Q, year)")
		case strings.HasPrefix(code, "DPE") || strings.HasPrefix(code, "NFD"):
			master.Errorf(fhir.CodeInvariant, "masterIdentifier is required: for DPE and NFD documents the specification version is written like 1.0.0")
		}
	}

	// RED's tolerance: the document inline (data) instead of the url the profile requires.
	for _, content := range c.All("content") {
		a := content.One("attachment")
		if a.Exists() && a.Count("data") == 0 && a.Count("url") == 0 {
			absentAt(a, ".data").Errorf(fhir.CodeRequired, "the document is required, inline in data (base64) or by url")
		}
	}
}

// anlageAttachment checks a document's Attachment: a content type written as a MIME type, the data
// valid base64 (FHIR core) and, for a PDF, really starting like one (plausibility).
func anlageAttachment(a *Cursor) {
	if !a.Exists() {
		return
	}
	ct := a.One("contentType")
	if ct.Exists() && !mimeType.MatchString(ct.Value()) {
		ct.Errorf(fhir.CodeValue, "a content type is a MIME type like application/pdf")
	}
	if data := a.One("data"); data.Exists() {
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(data.Value()), ""))
		switch {
		case err != nil || data.Value() == "":
			data.Errorf(fhir.CodeValue, "data must be the document encoded in base64")
		case mediaType(ct.Value()) == "application/pdf" && !bytes.HasPrefix(raw, []byte("%PDF")):
			data.Warnf(fhir.CodeValue, "the content type says PDF but the data does not start with %%PDF")
		}
	}
	notFuture(a.One("creation"), false)
}

// mediaType is a content type without parameters, in lower case.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}
