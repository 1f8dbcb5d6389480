package fachdienstsim

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/ident"
	"github.com/redclone/red/ti/admission"
	"github.com/redclone/red/ti/cms"
	"github.com/redclone/red/ti/fachdienst"
)

// Messages of the checks at $activate (gematik requirements A_23888, A_23890, A_23891, A_23892,
// A_22487, A_21370, A_22222, A_22347, A_23443 as the reference Fachdienst words them).
const (
	msgSignature    = "CAdES-BES signature verification has failed"
	msgKVNR         = "Ungültige Versichertennummer (KVNR): Die übergebene Versichertennummer des Patienten entspricht nicht den Prüfziffer-Validierungsregeln."
	msgPZN          = "Ungültige PZN: Die übergebene Pharmazentralnummer entspricht nicht den vorgeschriebenen Prüfziffer-Validierungsregeln."
	msgIK           = "Ungültiges Institutionskennzeichen (IKNR): Das übergebene Institutionskennzeichen im Versicherungsstatus entspricht nicht den Prüfziffer-Validierungsregeln."
	msgAlternateIK  = "Ungültiges Institutionskennzeichen (IKNR): Das übergebene Institutionskennzeichen des Kostenträgers entspricht nicht den Prüfziffer-Validierungsregeln."
	msgANR          = "Ungültige Arztnummer (LANR oder ZANR): Die übergebene Arztnummer entspricht nicht den Prüfziffer-Validierungsregeln."
	msgSigningDay   = "Ausstellungsdatum und Signaturzeitpunkt weichen voneinander ab, müssen aber taggleich sein"
	msgRxMismatch   = "PrescriptionId mismatch between Task and QES-Bundle"
	msgFlowMismatch = "Flowtype mismatch between Task and QES-Bundle"
	msgNarcotics    = "BTM und Thalidomid nicht zulässig"
)

// KBV systems and extensions read at $activate.
const (
	legacyPrescriptionIDSystem = "https://gematik.de/fhir/NamingSystem/PrescriptionID"
	pznSystem                  = "http://fhir.de/CodeSystem/ifa/pzn"
	ikSystem                   = "http://fhir.de/sid/arge-ik/iknr"
	extMedicationCategory      = "https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Medication_Category"
	extMultiplePrescription    = "https://fhir.kbv.de/StructureDefinition/KBV_EX_ERP_Multiple_Prescription"
	extLegalBasis              = "https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Legal_basis"
	extAlternativeIK           = "https://fhir.kbv.de/StructureDefinition/KBV_EX_FOR_Alternative_IK"
)

// kvnrSystems are the identifier systems of a KVNR in Patient.identifier.
var kvnrSystems = []string{"http://fhir.de/sid/gkv/kvid-10", "http://fhir.de/sid/pkv/kvid-10", "http://fhir.de/NamingSystem/gkv/kvid-10"}

// activation is what $activate learnt from a valid prescription.
type activation struct {
	content, digest        []byte
	kvnr, kvnrSystem       string
	acceptDate, expiryDate string
	mvoStart, mvoID        string
	warning                string // the LANR/ZANR warning of a 252 answer
}

// activateTask is $activate: the signed prescription is checked and the Task becomes ready.
func (s *Simulator) activateTask(c *call) error {
	signed, err := ePrescription(c.body)
	if err != nil {
		return err
	}
	act, err := s.checkPrescription(c.cur, signed)
	if err != nil {
		return err
	}
	t := clone(c.cur)
	if t.PrescriptionUUID, err = s.uuid(); err != nil {
		return err
	}
	if t.ConfirmationUUID, err = s.uuid(); err != nil {
		return err
	}
	t.Signed, t.Content, t.Digest = signed, act.content, act.digest
	t.KVNR, t.KVNRSystem = act.kvnr, act.kvnrSystem
	t.AcceptDate, t.ExpiryDate = act.acceptDate, act.expiryDate
	t.MVOStart, t.MVOID = act.mvoStart, act.mvoID
	t.Status = string(fachdienst.StatusReady)
	t.LastModified = s.now()
	if err := s.commit(t); err != nil {
		return err
	}
	status := http.StatusOK
	if act.warning != "" {
		status = 252
		c.w.Header().Set("Warning", `252 erp-server "`+act.warning+`"`)
	}
	writeXML(c.w, status, renderTask(t, taskView{accessCode: true, confirmation: true}))
	return nil
}

// ePrescription reads the signed prescription from the Parameters of $activate.
func ePrescription(body *etree.Element) ([]byte, error) {
	if body == nil || body.Tag != "Parameters" {
		return nil, fail(http.StatusBadRequest, "Failed to get ePrescription from requestBody")
	}
	params := body.SelectElements("parameter")
	if len(params) != 1 {
		return nil, fail(http.StatusBadRequest, "unexpected number of parameters")
	}
	bin := fhir.Child(params[0].SelectElement("resource"), "Binary")
	if fhir.ChildValue(params[0], "name") != "ePrescription" || bin == nil {
		return nil, fail(http.StatusBadRequest, "Failed to get ePrescription from requestBody")
	}
	data := fhir.ChildValue(bin, "data")
	if data == "" {
		return nil, fail(http.StatusBadRequest, "Failed to get ePrescription. Document has no data.")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(data), ""))
	if err != nil {
		return nil, &fdError{status: http.StatusBadRequest, text: msgSignature, diag: "Binary.data is not base64", vau: vauInvalidRx}
	}
	return der, nil
}

// checkPrescription verifies the QES and checks the KBV bundle inside it in the order of the
// reference Fachdienst: signature, identifier check digits, structure, medication, PrescriptionId,
// signing day, coverage, doctor numbers, insured person; then it works out the redemption period.
func (s *Simulator) checkPrescription(t *taskRecord, der []byte) (activation, error) {
	flow := fachdienst.FlowType(t.FlowType)
	content, info, err := s.verifySignature(der)
	if err != nil {
		return activation{}, err
	}
	b, err := readKBVBundle(content)
	if err != nil {
		return activation{}, err
	}
	sum := sha256.Sum256(content)
	act := activation{content: content, digest: sum[:]}
	if err := b.checkCheckDigits(); err != nil {
		return activation{}, err
	}
	rx, err := b.prescription(flow)
	if err != nil {
		return activation{}, err
	}
	mvo, err := b.checkMedication(rx, flow)
	if err != nil {
		return activation{}, err
	}
	if err := b.checkPrescriptionID(t.ID); err != nil {
		return activation{}, err
	}
	signingDay, err := s.checkSigningDay(info, rx)
	if err != nil {
		return activation{}, err
	}
	if err := b.checkCoverage(flow); err != nil {
		return activation{}, err
	}
	if act.warning, err = b.checkANRs(s.cfg.RejectInvalidANR); err != nil {
		return activation{}, err
	}
	if act.kvnr, act.kvnrSystem, err = b.insured(); err != nil {
		return activation{}, err
	}
	if mvo.active {
		act.mvoStart, act.mvoID = mvo.start, mvo.id
	}
	act.acceptDate, act.expiryDate = redemptionPeriod(s.dayStart(signingDay), flow, rx.legalBasis, mvo)
	return act, nil
}

// verifySignature checks the CAdES signature of the prescription against the trusted roots and
// the signer's profession, and returns the signed content with the signature's details.
func (s *Simulator) verifySignature(der []byte) ([]byte, cms.Info, error) {
	content, signer, err := cms.Verify(der, nil, s.cfg.Roots, s.cfg.Now())
	if err != nil {
		return nil, cms.Info{}, &fdError{status: http.StatusBadRequest, text: msgSignature, diag: err.Error(), vau: vauInvalidRx}
	}
	if err := checkQESProfession(signer); err != nil {
		return nil, cms.Info{}, err
	}
	info, err := cms.Inspect(der)
	if err != nil {
		return nil, cms.Info{}, &fdError{status: http.StatusBadRequest, text: msgSignature, diag: err.Error(), vau: vauInvalidRx}
	}
	return content, info, nil
}

// kbvBundle is the signed KBV bundle with its resources by type.
type kbvBundle struct {
	root   *etree.Element
	byType map[string][]*etree.Element
}

// readKBVBundle parses the signed content, which must be a Bundle.
func readKBVBundle(content []byte) (kbvBundle, error) {
	root, err := fhir.Parse(content, fhir.Limits{MaxBytes: maxBody, MaxDepth: 64, MaxElements: 100_000})
	if err != nil || root.Tag != "Bundle" {
		diag := "the signed content is not a Bundle"
		if err != nil {
			diag = err.Error()
		}
		return kbvBundle{}, failDiag(http.StatusBadRequest, "parsing / validation error", diag)
	}
	b := kbvBundle{root: root, byType: map[string][]*etree.Element{}}
	for _, entry := range root.SelectElements("entry") {
		if res := fhir.ResourceOf(entry.SelectElement("resource")); res != nil {
			b.byType[res.Tag] = append(b.byType[res.Tag], res)
		}
	}
	return b, nil
}

// checkCheckDigits checks the PZNs of the medicines and the IKs of the payors (the bundle's
// additional validation).
func (b kbvBundle) checkCheckDigits() error {
	for _, med := range b.byType["Medication"] {
		if err := checkPZNs(med); err != nil {
			return err
		}
	}
	for _, cov := range b.byType["Coverage"] {
		ik := ""
		if payor := cov.SelectElement("payor"); payor != nil {
			for _, id := range payor.SelectElements("identifier") {
				if fhir.ChildValue(id, "system") == ikSystem {
					ik = fhir.ChildValue(id, "value")
				}
			}
		}
		if ik == "" || ident.IK(ik) != nil {
			return fail(http.StatusBadRequest, msgIK)
		}
		for _, ext := range cov.FindElements(".//extension[@url='" + extAlternativeIK + "']") {
			if ident.IK(fhir.ChildValue(ext, "valueIdentifier", "value")) != nil {
				return fail(http.StatusBadRequest, msgAlternateIK)
			}
		}
	}
	return nil
}

// prescriptionRequest is the one MedicationRequest (DeviceRequest for DiGA) of a bundle with
// what is read from it and its Composition.
type prescriptionRequest struct {
	request     *etree.Element
	requestType string // MedicationRequest or DeviceRequest
	authoredOn  string
	legalBasis  string // the Composition's KBV_EX_FOR_Legal_basis code
}

// prescription finds the bundle's one Composition and one request.
func (b kbvBundle) prescription(flow fachdienst.FlowType) (prescriptionRequest, error) {
	var rx prescriptionRequest
	if n := len(b.byType["Composition"]); n != 1 {
		return rx, fail(http.StatusBadRequest, fmt.Sprintf("Expected exactly one Composition in prescription bundle, got: %d", n))
	}
	for _, ext := range b.byType["Composition"][0].SelectElements("extension") {
		if ext.SelectAttrValue("url", "") == extLegalBasis {
			rx.legalBasis = fhir.ChildValue(ext, "valueCoding", "code")
		}
	}
	rx.requestType = "MedicationRequest"
	if flow == fachdienst.FlowDiGA {
		rx.requestType = "DeviceRequest"
	}
	requests := b.byType[rx.requestType]
	if len(requests) != 1 {
		return rx, fail(http.StatusBadRequest, fmt.Sprintf("Unexpected number of %ss in prescription bundle: %d", rx.requestType, len(requests)))
	}
	rx.request = requests[0]
	rx.authoredOn = fhir.ChildValue(rx.request, "authoredOn")
	return rx, nil
}

// checkMedication checks the multiple prescription (MVO) of the request and the category of
// every medicine against the flow type.
func (b kbvBundle) checkMedication(rx prescriptionRequest, flow fachdienst.FlowType) (mvoInfo, error) {
	mvo, err := multiplePrescription(rx.request, flow, rx.legalBasis, rx.authoredOn)
	if err != nil {
		return mvo, err
	}
	for _, med := range b.byType["Medication"] {
		if err := checkCategory(med, flow); err != nil {
			return mvo, err
		}
	}
	return mvo, nil
}

// checkPrescriptionID compares the bundle's PrescriptionId with the Task's.
func (b kbvBundle) checkPrescriptionID(taskID string) error {
	rxID := ""
	for _, id := range b.root.SelectElements("identifier") {
		if sys := fhir.ChildValue(id, "system"); sys == fachdienst.SystemPrescriptionID || sys == legacyPrescriptionIDSystem {
			rxID = fhir.ChildValue(id, "value")
		}
	}
	if ident.PrescriptionID(rxID) != nil {
		return failDiag(http.StatusBadRequest, "Error while extracting prescriptionId from QES-Bundle", "Bundle.identifier holds no valid PrescriptionId")
	}
	if rxID[:3] != taskID[:3] {
		return fail(http.StatusBadRequest, msgFlowMismatch)
	}
	if rxID != taskID {
		return fail(http.StatusBadRequest, msgRxMismatch)
	}
	return nil
}

// checkSigningDay requires the signing day (in Germany) to be the day the request was
// authored, and returns it.
func (s *Simulator) checkSigningDay(info cms.Info, rx prescriptionRequest) (string, error) {
	if info.SigningTime.IsZero() {
		return "", fail(http.StatusBadRequest, "No signingTime in PKCS7 file")
	}
	signingDay := info.SigningTime.In(s.berlin).Format(time.DateOnly)
	authoredDay, ok := s.localDay(rx.authoredOn)
	if !ok {
		return "", failDiag(http.StatusBadRequest, "error checking authoredOn==signature date", rx.requestType+".authoredOn is not a date")
	}
	if signingDay != authoredDay {
		return "", failDiag(http.StatusBadRequest, msgSigningDay,
			"KBVBundle.signature.signingDay="+signingDay+" != KBVBundle/EVDGABundle.MedicationRequest/DeviceRequest.authoredOn="+authoredDay)
	}
	return signingDay, nil
}

// coverageTypes are the Coverage types a prescription may name.
var coverageTypes = []string{"GKV", "SEL", "BG", "UK", "PKV"}

// checkCoverage allows at most one Coverage, of a known type, and private insurance (PKV) in
// exactly the flow types for it.
func (b kbvBundle) checkCoverage(flow fachdienst.FlowType) error {
	coverages := b.byType["Coverage"]
	if len(coverages) > 1 {
		return fail(http.StatusBadRequest, "Unexpected number of Coverage Resources in KBV/EVDGA Bundle")
	}
	pkv := false
	for _, cov := range coverages {
		typ := fhir.ChildValue(cov, "type", "coding", "code")
		pkv = typ == "PKV"
		if !slices.Contains(coverageTypes, typ) {
			return fail(http.StatusBadRequest, "Kostenträger nicht zulässig")
		}
	}
	switch flow {
	case fachdienst.FlowApothekenpflichtig, fachdienst.FlowDiGA, fachdienst.FlowDirekteZuweisung:
		if pkv {
			return fail(http.StatusBadRequest, statusPKVNotAllowed)
		}
	case fachdienst.FlowApothekenpflichtigPKV, fachdienst.FlowDirekteZuweisungPKV:
		if !pkv {
			return fail(http.StatusBadRequest, statusPKVNotSet)
		}
	}
	return nil
}

// checkANRs checks the LANR/ZANR of every Practitioner: a wrong check digit is a warning (the
// 252 answer), or with reject an error.
func (b kbvBundle) checkANRs(reject bool) (warning string, err error) {
	for _, pr := range b.byType["Practitioner"] {
		if !validANR(pr) {
			if reject {
				return "", fail(http.StatusBadRequest, msgANR)
			}
			warning = msgANR
		}
	}
	return warning, nil
}

// insured is the KVNR of the bundle's one Patient, which becomes Task.for, and its system.
func (b kbvBundle) insured() (kvnr, system string, err error) {
	patients := b.byType["Patient"]
	if len(patients) != 1 {
		return "", "", fail(http.StatusBadRequest, fmt.Sprintf("Expected exactly one Patient in prescription bundle, got: %d", len(patients)))
	}
	for _, id := range patients[0].SelectElements("identifier") {
		if sys := fhir.ChildValue(id, "system"); slices.Contains(kvnrSystems, sys) {
			kvnr, system = fhir.ChildValue(id, "value"), sys
			break
		}
	}
	if kvnr == "" {
		return "", "", fail(http.StatusBadRequest, "Failed to get KVNR from Bundle.entry:Patient")
	}
	if ident.KVNR(kvnr) != nil {
		return "", "", fail(http.StatusBadRequest, msgKVNR)
	}
	if system == "http://fhir.de/NamingSystem/gkv/kvid-10" {
		system = fachdienst.SystemKVNR
	}
	return kvnr, system, nil
}

// redemptionPeriod is the accept and expiry date of a prescription signed on the day signed:
// the MVO's period (or a year), six days for a T-Rezept, otherwise three months to expiry and
// for acceptance three working days (Entlassrezept), 28 days (flow 160, 169) or the expiry.
func redemptionPeriod(signed time.Time, flow fachdienst.FlowType, legalBasis string, mvo mvoInfo) (accept, expiry string) {
	switch {
	case mvo.active && mvo.end != "":
		return mvo.end, mvo.end
	case mvo.active:
		d := signed.AddDate(0, 0, 365).Format(time.DateOnly)
		return d, d
	case flow == fachdienst.FlowTRezept:
		d := signed.AddDate(0, 0, 6).Format(time.DateOnly)
		return d, d
	}
	expiry = addMonths(signed, 3).Format(time.DateOnly)
	switch {
	case legalBasis == "04" || legalBasis == "14": // Entlassrezept
		return addWorkdays(signed, 3).Format(time.DateOnly), expiry
	case flow == fachdienst.FlowApothekenpflichtig || flow == fachdienst.FlowDirekteZuweisung:
		return signed.AddDate(0, 0, 28).Format(time.DateOnly), expiry
	}
	return expiry, expiry
}

// qesProfessions are the profession OIDs a prescription's QES certificate must carry (A_19225).
var qesProfessions = []string{fachdienst.OIDArzt, fachdienst.OIDZahnarzt}

// checkQESProfession refuses QES certificates whose admission names no prescribing profession.
func checkQESProfession(cert *x509.Certificate) error {
	adm, _ := admission.Of(cert)
	for _, oid := range adm.ProfessionOIDs {
		if slices.Contains(qesProfessions, oid) {
			return nil
		}
	}
	return &fdError{status: http.StatusBadRequest, text: "The QES-Certificate does not have expected ProfessionOID.", vau: vauInvalidRx}
}

// localDay is the day in Germany of a FHIR date or dateTime.
func (s *Simulator) localDay(v string) (string, bool) {
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		return d.Format(time.DateOnly), true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.In(s.berlin).Format(time.DateOnly), true
	}
	return "", false
}

// checkPZNs checks every PZN coding of a Medication (also of Rezeptur ingredients).
func checkPZNs(med *etree.Element) error {
	for _, c := range med.FindElements(".//coding") {
		if fhir.ChildValue(c, "system") == pznSystem && ident.PZN(fhir.ChildValue(c, "code")) != nil {
			return fail(http.StatusBadRequest, msgPZN)
		}
	}
	return nil
}

// checkCategory checks the medication category against the flow type: no narcotics (01), and
// T-Rezept medicines (02) only in flow 166 (which takes nothing else).
func checkCategory(med *etree.Element, flow fachdienst.FlowType) error {
	category := ""
	for _, ext := range med.SelectElements("extension") {
		if ext.SelectAttrValue("url", "") == extMedicationCategory {
			category = fhir.ChildValue(ext, "valueCoding", "code")
		}
	}
	switch {
	case category == "01":
		return fail(http.StatusBadRequest, msgNarcotics)
	case category == "02" && flow != fachdienst.FlowTRezept:
		return fail(http.StatusBadRequest, msgNarcotics)
	case flow == fachdienst.FlowTRezept && category != "02":
		return failDiag(http.StatusBadRequest, "Unzulässige Verordnung für Flowtype 166", "flow type 166 takes only medicines of category 02 (T-Rezept)")
	}
	return nil
}

// validANR reports whether every LANR/ZANR of a Practitioner has a valid check digit.
func validANR(pr *etree.Element) bool {
	for _, id := range pr.SelectElements("identifier") {
		v := fhir.ChildValue(id, "value")
		switch fhir.ChildValue(id, "system") {
		case "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR", "http://fhir.de/NamingSystem/kbv/lanr":
			if ident.LANR(v) != nil {
				return false
			}
		case "http://fhir.de/sid/kzbv/zahnarztnummer":
			if ident.ZANR(v) != nil {
				return false
			}
		}
	}
	return true
}

// mvoInfo is the Mehrfachverordnung extension of a MedicationRequest.
type mvoInfo struct {
	active          bool
	start, end, id  string
	numerator, deno string
}

// multiplePrescription reads and checks the Mehrfachverordnung extension.
func multiplePrescription(request *etree.Element, flow fachdienst.FlowType, legalBasis, authoredOn string) (mvoInfo, error) {
	var m mvoInfo
	var ext *etree.Element
	for _, e := range request.SelectElements("extension") {
		if e.SelectAttrValue("url", "") == extMultiplePrescription {
			ext = e
		}
	}
	if ext == nil {
		return m, nil
	}
	var hasPeriod, hasNumbering bool
	for _, sub := range ext.SelectElements("extension") {
		switch sub.SelectAttrValue("url", "") {
		case "Kennzeichen":
			m.active = fhir.ChildValue(sub, "valueBoolean") == "true"
		case "Zeitraum":
			hasPeriod = true
			m.start = fhir.ChildValue(sub, "valuePeriod", "start")
			m.end = fhir.ChildValue(sub, "valuePeriod", "end")
		case "Nummerierung":
			hasNumbering = true
			m.numerator = fhir.ChildValue(sub, "valueRatio", "numerator", "value")
			m.deno = fhir.ChildValue(sub, "valueRatio", "denominator", "value")
		case "ID":
			m.id = fhir.ChildValue(sub, "valueIdentifier", "value")
		}
	}
	if !m.active {
		if hasNumbering {
			return m, fail(http.StatusBadRequest, "Nummerierung darf nur bei MVO angegeben werden")
		}
		if hasPeriod {
			return m, fail(http.StatusBadRequest, "Zeitraum darf nur bei MVO angegeben werden")
		}
		return m, nil
	}
	if flow == fachdienst.FlowDiGA || flow == fachdienst.FlowTRezept {
		return m, fail(http.StatusBadRequest, "Mehrfachverordnungen nur für die Verordnungen von apothekenpflichtigen Arzneimittel zulässig")
	}
	var num, den int
	fmt.Sscan(m.numerator, &num) //nolint:errcheck // a missing number stays 0 and fails below
	fmt.Sscan(m.deno, &den)      //nolint:errcheck
	switch {
	case num > 4 || den > 4:
		return m, fail(http.StatusBadRequest, "Eine Mehrfachverordnungen darf aus maximal 4 Teilverordnungen bestehen")
	case num < 1:
		return m, fail(http.StatusBadRequest, "Für eine Mehrfachverordnungen muss der numerator größer 0 sein.")
	case den < 2:
		return m, fail(http.StatusBadRequest, "Eine Mehrfachverordnung muss aus mindestens 2 Teilverordnungen bestehen")
	case num > den:
		return m, fail(http.StatusBadRequest, "Numerator ist größer als denominator")
	}
	switch legalBasis {
	case "10", "11", "17":
		return m, fail(http.StatusBadRequest, "Für Ersatzverordnung sind keine Mehrfachverordnungen zulässig")
	case "04", "14":
		return m, fail(http.StatusBadRequest, "Für Entlassrezepte sind keine Mehrfachverordnungen zulässig")
	}
	if m.start == "" {
		return m, fail(http.StatusBadRequest, "Beginn der Einlösefrist für MVO ist erforderlich")
	}
	if len(authoredOn) >= 10 && m.start[:min(10, len(m.start))] < authoredOn[:10] {
		return m, fail(http.StatusBadRequest, "Einlösefrist liegt zeitlich vor dem Ausstellungsdatum")
	}
	if m.end != "" && m.end < m.start {
		return m, fail(http.StatusBadRequest, "Ende der Einlösefrist liegt vor Beginn der Einlösefrist")
	}
	m.start = m.start[:min(10, len(m.start))]
	m.end = m.end[:min(10, len(m.end))]
	return m, nil
}

// addMonths adds months to a date, clamping to the end of the target month (31 Jan + 1 month is
// 28/29 Feb, not 2/3 Mar).
func addMonths(d time.Time, months int) time.Time {
	first := time.Date(d.Year(), d.Month()+time.Month(months), 1, 0, 0, 0, 0, d.Location())
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d.Day(), last), 0, 0, 0, 0, d.Location())
}

// addWorkdays returns the last of n working days (Monday to Saturday, the day itself counting
// when it is one) starting at d; public holidays are not known to the simulator.
func addWorkdays(d time.Time, n int) time.Time {
	for {
		if d.Weekday() != time.Sunday {
			n--
			if n == 0 {
				return d
			}
		}
		d = d.AddDate(0, 0, 1)
	}
}
