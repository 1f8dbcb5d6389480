package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redclone/red/fhir/ident"
)

// Data renders the load's patients from the templates in testdata/load (see its README): one KBV
// AWS Patientenakte bundle per patient, deterministic in the patient's number, so that later
// phases know every patient's id and KVNR without storing them.
type Data struct {
	tmpl         map[string]string
	surnames     []string
	cumulative   []float64 // cumulative weights of surnames
	female, male []string
}

// ReadData reads the templates and name lists from dir (the repository's testdata/load).
func ReadData(dir string) (*Data, error) {
	d := &Data{tmpl: map[string]string{}}
	for _, name := range []string{"patient", "coverage", "encounter", "condition", "practitioner", "organization", "practitionerrole"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".xml"))
		if err != nil {
			return nil, err
		}
		d.tmpl[name] = string(b)
	}
	list := func(name string) ([]string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				out = append(out, l)
			}
		}
		return out, err
	}
	var err [3]error
	d.surnames, err[0] = list("surnames.txt")
	d.female, err[1] = list("given-female.txt")
	d.male, err[2] = list("given-male.txt")
	for _, e := range err {
		if e != nil {
			return nil, e
		}
	}
	// German surname frequencies fall off roughly like rank^-0.55 within the top 200
	// (Müller is carried by about 17 times as many people as the 200th name).
	sum := 0.0
	for r := range d.surnames {
		sum += math.Pow(float64(r+1), -0.55)
		d.cumulative = append(d.cumulative, sum)
	}
	return d, nil
}

// Person is what a load needs to know about a patient's names.
type Person struct {
	Family, Given, Gender string
}

// Patient draws patient i's names, as Bundle(i) does.
func (d *Data) Patient(i int) Person {
	return d.person(patientRand(i))
}

func patientRand(i int) *rand.Rand { return rand.New(rand.NewPCG(uint64(i), 0x5eed)) }

func (d *Data) surname(rng *rand.Rand) string {
	x := rng.Float64() * d.cumulative[len(d.cumulative)-1]
	i, _ := slices.BinarySearch(d.cumulative, x)
	return d.surnames[min(i, len(d.surnames)-1)]
}

func (d *Data) person(rng *rand.Rand) Person {
	p := Person{Family: d.surname(rng), Gender: "female"}
	if rng.IntN(20) == 0 && !strings.Contains(p.Family, "-") { // a double name now and then
		if other := d.surname(rng); other != p.Family && !strings.Contains(other, "-") {
			p.Family += "-" + other
		}
	}
	names := d.female
	if rng.IntN(2) == 0 {
		p.Gender, names = "male", d.male
	}
	p.Given = names[rng.IntN(len(names))]
	if rng.IntN(4) == 0 {
		if second := names[rng.IntN(len(names))]; second != p.Given {
			p.Given += " " + second
		}
	}
	return p
}

// PatientID is patient i's resource id.
func PatientID(i int) string { return "P" + strconv.Itoa(100000+i) }

// KVNR is patient i's KVNR: a letter, eight digits unique to i (below 100,000,000), and the check
// digit.
func KVNR(i int) string {
	body := fmt.Sprintf("%c%08d", 'A'+(i*7)%26, (i*7919+12345678)%100_000_000)
	for d := byte('0'); d <= '9'; d++ {
		if k := body + string(d); ident.KVNR(k) == nil {
			return k
		}
	}
	panic("no KVNR check digit for " + body)
}

var (
	streets = []string{"Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Bergstraße", "Birkenweg", "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße", "Schillerstraße", "Goethestraße", "Am Markt", "Mühlenweg", "Jahnstraße"}
	cities  = [][2]string{{"Berlin", "10115"}, {"Hamburg", "20095"}, {"München", "80331"}, {"Köln", "50667"}, {"Frankfurt am Main", "60311"}, {"Stuttgart", "70173"}, {"Düsseldorf", "40213"}, {"Leipzig", "04109"}, {"Dortmund", "44135"}, {"Essen", "45127"}, {"Bremen", "28195"}, {"Dresden", "01067"}, {"Hannover", "30159"}, {"Nürnberg", "90402"}, {"Jena", "07743"}, {"Musterstadt", "12345"}}
	icds    = [][2]string{{"J06.9", "Akute Infektion der oberen Atemwege"}, {"I10.90", "Essentielle Hypertonie"}, {"E11.90", "Diabetes mellitus, Typ 2"}, {"M54.5", "Kreuzschmerz"}, {"J20.9", "Akute Bronchitis"}, {"K52.9", "Nichtinfektiöse Gastroenteritis"}, {"F32.9", "Depressive Episode"}, {"E78.0", "Reine Hypercholesterinämie"}, {"J45.9", "Asthma bronchiale"}, {"R51", "Kopfschmerz"}, {"Z00.0", "Ärztliche Allgemeinuntersuchung"}, {"M17.1", "Sonstige primäre Gonarthrose"}}
	anlass  = []string{"Kontrolle nach Infekt", "Routineuntersuchung", "Akute Beschwerden", "Wiederholungsrezept", "Befundbesprechung", "Impfung", "Vorsorge"}
	notes   = []string{"Beschwerden seit fünf Tagen.", "Kontrolle in vier Wochen.", "Medikation unverändert.", "Überweisung erwogen.", "Patient beschwerdefrei."}
)

const fhirBase = "http://praxis.example/fhir/"

// Bundle renders patient i's Patientenakte: Patient, Coverage, Encounter and Condition, whose
// Encounter refers to the resources of SharedBundle.
func (d *Data) Bundle(i int) []byte {
	return d.bundle(patientRand(i), strconv.Itoa(100000+i), strconv.Itoa(4711+i), strconv.Itoa(i), KVNR(i))
}

// bundle renders a Patientenakte whose names and clinical details come from rng and whose unique
// parts are num (the digits of the resources' ids), mrn, the number in the e-mail address, and
// kvnr.
func (d *Data) bundle(rng *rand.Rand, num, mrn, email, kvnr string) []byte {
	p := d.person(rng)
	pid := "P" + num
	cid, eid, did := "V"+pid[1:], "E"+pid[1:], "C"+pid[1:]
	contactNames := d.female
	if p.Gender == "female" {
		contactNames = d.male
	}
	city := cities[rng.IntN(len(cities))]
	birth := time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(93*365))
	visit := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(660))
	startMin := 8*60 + 5*rng.IntN(108)
	hhmm := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	icd := icds[rng.IntN(len(icds))]
	marital := []string{"M", "S", "W", "D", "U"}[rng.IntN(5)]

	patient := strings.NewReplacer(
		"{{ID}}", pid, "{{MRN}}", mrn, "{{KVNR}}", kvnr,
		"{{FAMILY}}", p.Family, "{{GIVEN}}", p.Given, "{{GENDER}}", p.Gender,
		"{{BIRTH}}", birth.Format(time.DateOnly),
		"{{PHONE}}", fmt.Sprintf("0%d %d", 30+rng.IntN(9000), 100000+rng.IntN(9000000)),
		"{{EMAIL}}", "patient"+email+"@example.org",
		"{{STREET}}", streets[rng.IntN(len(streets))], "{{HOUSE}}", strconv.Itoa(1+rng.IntN(150)),
		"{{CITY}}", city[0], "{{POSTAL}}", city[1], "{{MARITAL}}", marital,
		"{{CONTACT_GIVEN}}", contactNames[rng.IntN(len(contactNames))],
		"{{CONTACT_PHONE}}", fmt.Sprintf("+49 %d %d", 30+rng.IntN(900), 100000+rng.IntN(900000)),
	).Replace(d.tmpl["patient"])
	coverage := strings.NewReplacer(
		"{{ID}}", cid, "{{KVNR}}", kvnr, "{{PATIENT}}", pid, "{{DISPLAY}}", p.Given+" "+p.Family,
		"{{VERSICHERTENART}}", []string{"1", "1", "3", "5"}[rng.IntN(4)],
		"{{EINLESEDATUM}}", visit.Format(time.DateOnly), "{{START}}", "2020-01-01",
		"{{IK}}", "109500128", "{{KASSE}}", "AOK Musterland",
	).Replace(d.tmpl["coverage"])
	encounter := strings.NewReplacer(
		"{{ID}}", eid, "{{PATIENT}}", pid, "{{ROLE}}", "r1", "{{LANR}}", "838382201", "{{ORGANIZATION}}", "o1",
		"{{DATE}}", visit.Format(time.DateOnly), "{{DATE_DE}}", visit.Format("02.01.2006"),
		"{{START}}", hhmm(startMin), "{{END}}", hhmm(startMin+10+5*rng.IntN(6)),
		"{{ANLASS}}", anlass[rng.IntN(len(anlass))],
	).Replace(d.tmpl["encounter"])
	condition := strings.NewReplacer(
		"{{ID}}", did, "{{PATIENT}}", pid, "{{ENCOUNTER}}", eid,
		"{{ICD}}", icd[0], "{{ICD_TEXT}}", icd[1], "{{DAUER}}", strconv.FormatBool(rng.IntN(3) == 0),
		"{{ONSET}}", visit.AddDate(0, 0, -rng.IntN(30)).Format(time.DateOnly), "{{DATE}}", visit.Format(time.DateOnly),
		"{{NOTE}}", notes[rng.IntN(len(notes))],
	).Replace(d.tmpl["condition"])

	var sb strings.Builder
	sb.Grow(12 << 10)
	bundleStart(&sb, "akte-"+pid)
	entry(&sb, "Patient", pid, patient)
	entry(&sb, "Coverage", cid, coverage)
	entry(&sb, "Encounter", eid, encounter)
	entry(&sb, "Condition", did, condition)
	sb.WriteString("</Bundle>\n")
	return []byte(sb.String())
}

// SharedBundle holds the Practitioner, Organization and PractitionerRole (ids pr1, o1, r1) that
// every patient's Encounter names: it is posted once, before the patients.
func (d *Data) SharedBundle() []byte {
	var sb strings.Builder
	bundleStart(&sb, "praxis-stammdaten")
	entry(&sb, "Practitioner", "pr1", d.tmpl["practitioner"])
	entry(&sb, "Organization", "o1", d.tmpl["organization"])
	entry(&sb, "PractitionerRole", "r1", d.tmpl["practitionerrole"])
	sb.WriteString("</Bundle>\n")
	return []byte(sb.String())
}

func bundleStart(sb *strings.Builder, id string) {
	sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Bundle xmlns="http://hl7.org/fhir"><id value="`)
	sb.WriteString(id)
	sb.WriteString(`"/><meta><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Bundle_Patientenakte|1.2.0"/></meta><type value="history"/>` + "\n")
}

// entry wraps a resource (a standalone document; its namespace declaration is the bundle's) in a
// bundle entry with fullUrl and a PUT request, as RED's Patientenakte examples do.
func entry(sb *strings.Builder, typ, id, resource string) {
	sb.WriteString(`<entry><fullUrl value="` + fhirBase + typ + "/" + id + `"/><resource>`)
	sb.WriteString(strings.Replace(strings.TrimSpace(resource), ` xmlns="http://hl7.org/fhir"`, "", 1))
	sb.WriteString(`</resource><request><method value="PUT"/><url value="` + typ + "/" + id + `"/></request></entry>` + "\n")
}
