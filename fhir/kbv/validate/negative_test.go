package validate_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/fhir/kbv"
	"github.com/redclone/red/fhir/kbv/validate"
	"github.com/redclone/red/internal/fixture"
)

// negativeDir holds gematik's 42 intentionally broken e-prescription bundles (Apache-2.0, see the
// NOTICE beside them), one prescription of July 2023, each with one defect.
const negativeDir = "../testdata/gematik/eRezept-Examples/Negative-Examples/2_01.07.2023/KBV_PR_ERP_Bundle"

// negativeBaseline are two defects all 42 share besides their own: the Coverage's payor IK
// 343614470 and the Medication's PZN have a wrong check digit.
var negativeBaseline = []string{"Bundle.entry[5].resource.payor[0].identifier.value", "Bundle.entry[2].resource.code.coding[0].code"}

// negatives are the defect of each broken bundle (by file number) and the error that must refuse
// it: its code and location.
var negatives = map[int]struct {
	code fhir.IssueCode
	at   string
}{
	1:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[1].valueCoding.code"},           // DMP-Kennzeichen 42 (not in the key table of July 2023)
	2:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[1].valueCoding.code"},           // DMP-Kennzeichen 0
	3:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[1].valueCoding.code"},           // DMP-Kennzeichen 12 (not in the key table of July 2023)
	4:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[1].valueCoding.code"},           // DMP-Kennzeichen asthma
	5:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[0].valueCoding.code"},           // besondere Personengruppe -T
	6:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[0].valueCoding.code"},           // besondere Personengruppe 0
	7:  {fhir.CodeValue, "Bundle.entry[5].resource.extension[0].valueCoding.code"},           // besondere Personengruppe 10
	8:  {fhir.CodeInvalid, "Bundle.entry[5].resource.type"},                                  // Kostenträger type gkv (lower case)
	9:  {fhir.CodeInvalid, "Bundle.entry[5].resource.type"},                                  // Kostenträger type Inkasso
	10: {fhir.CodeValue, "Bundle.entry[5].resource.extension[3].valueCoding.code"},           // Versichertenart P
	11: {fhir.CodeValue, "Bundle.entry[5].resource.extension[2].valueCoding.code"},           // WOP 40
	12: {fhir.CodeValue, "Bundle.entry[5].resource.extension[2].valueCoding.code"},           // WOP 1000
	13: {fhir.CodeInvariant, "Bundle.entry[5].resource.payor.identifier[0].value"},           // payor IK with ten digits
	14: {fhir.CodeStructure, "Bundle.entry[2].resource.code.coding[0]"},                      // Medication_PZN coded freitext instead of a PZN
	15: {fhir.CodeStructure, "Bundle.entry[2].resource.code.coding[0]"},                      // … freiTExt, without amount
	16: {fhir.CodeStructure, "Bundle.entry[2].resource.form.coding[0]"},                      // … freitext, Darreichungsform without system
	17: {fhir.CodeValue, "Bundle.entry[1].resource.dispenseRequest.quantity.code"},           // quantity code {Beutel} instead of {Package}
	18: {fhir.CodeValue, "Bundle.entry[1].resource.dispenseRequest.quantity.system"},         // quantity system in upper case
	19: {fhir.CodeStructure, "Bundle.entry[1].resource.dispenseRequest.validityPeriod"},      // validityPeriod (start only)
	20: {fhir.CodeStructure, "Bundle.entry[1].resource.dispenseRequest.validityPeriod"},      // validityPeriod (end only)
	21: {fhir.CodeStructure, "Bundle.entry[1].resource.dispenseRequest.validityPeriod"},      // validityPeriod (start and end)
	22: {fhir.CodeValue, "Bundle.entry[4].resource.identifier[0].system"},                    // BSNR-typed identifier under the IK system
	23: {fhir.CodeValue, "Bundle.entry[4].resource.identifier[0].system"},                    // KZVA-typed identifier under the BSNR system
	24: {fhir.CodeInvariant, "Bundle.entry[4].resource.identifier[0].value"},                 // KZV-Abrechnungsnummer with a letter
	25: {fhir.CodeInvariant, "Bundle.entry[4].resource.identifier[0].value"},                 // KZV-Abrechnungsnummer with ten digits
	26: {fhir.CodeStructure, "Bundle.entry[3].resource.identifier[0]"},                       // identifier of a foreign system without type
	27: {fhir.CodeStructure, "Bundle.entry[3].resource.identifier[0]"},                       // KVNR-typed identifier under a foreign system
	28: {fhir.CodeInvariant, "Bundle.entry[3].resource.identifier[0].value"},                 // KVNR starting with a digit
	29: {fhir.CodeInvariant, "Bundle.entry[3].resource.identifier[0].value"},                 // KVNR with an umlaut
	30: {fhir.CodeInvariant, "Bundle.entry[3].resource.identifier[0].value"},                 // KVNR in lower case
	31: {fhir.CodeInvariant, "Bundle.entry[3].resource.identifier[0].value"},                 // KVNR with nine characters
	32: {fhir.CodeInvariant, "Bundle.entry[3].resource.identifier[0].value"},                 // KVNR with eleven characters
	33: {fhir.CodeValue, "Bundle.entry[3].resource.name[0].family.extension[1].valueString"}, // Vorsatzwort too long, not in the family name
	34: {fhir.CodeValue, "Bundle.entry[3].resource.name[0].family.extension[1].valueString"}, // Namenszusatz too long, not in the family name
	35: {fhir.CodeInvariant, "Bundle.entry[6].resource.identifier[0].value"},                 // LANR with a letter
	36: {fhir.CodeInvariant, "Bundle.entry[6].resource.identifier[0].value"},                 // LANR with eight digits
	37: {fhir.CodeInvariant, "Bundle.entry[6].resource.identifier[0].value"},                 // LANR with ten digits
	38: {fhir.CodeInvariant, "Bundle.entry[6].resource"},                                     // LANR and ZANR
	39: {fhir.CodeStructure, "Bundle.entry[6].resource.identifier[0]"},                       // identifier type LÜNR instead of LANR
	40: {fhir.CodeValue, "Bundle.entry[0].resource.extension[0].valueCoding.code"},           // Legal_basis (Statuskennzeichen) 09
	41: {fhir.CodeInvariant, "Bundle.entry[0].resource"},                                     // no section Coverage
	42: {fhir.CodeValue, "Bundle.entry[0].resource.type.coding[0].code"},                     // type e16a instead of e16A
}

// TestERPNegativeExamples validates every entry of each broken bundle as red does and wants the
// bundle refused at the location of its defect (an error there), with nothing refused in the
// other resources but the baseline defects — whether the profile tables or a hand-written rule (the KBV key tables
// the packages do not ship: DMP, besondere Personengruppe, Versichertenart, WOP,
// Statuskennzeichen) catches it.
func TestERPNegativeExamples(t *testing.T) {
	for file := 1; file <= 42; file++ {
		t.Run(fmt.Sprintf("%02d", file), func(t *testing.T) {
			path := filepath.Join(negativeDir, fmt.Sprintf("e98da709-d9f8-494d-87b0-a59a0f471924_%02d.xml", file))
			b, err := fhir.Parse(fixture.Read(t, path), fhir.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			now, err := kbv.ParseDate(fhir.ChildValue(b, "timestamp"))
			if err != nil {
				t.Fatal(err)
			}
			want := negatives[file]
			refused := false
			for i, e := range b.SelectElements("entry") {
				resource := fmt.Sprintf("Bundle.entry[%d].resource", i)
				for _, is := range validate.Resource(fhir.ResourceOf(e.SelectElement("resource")), resource, kbv.Options{Now: now}) {
					switch {
					case is.Severity != fhir.SeverityError, slices.Contains(negativeBaseline, is.Expression) && strings.Contains(is.Diagnostics, "check digit"):
					case is.Code == want.code && is.Expression == want.at:
						refused = true
					case !strings.HasPrefix(want.at, resource):
						t.Errorf("error outside the defective resource: %s %s: %s", is.Code, is.Expression, is.Diagnostics)
					}
				}
			}
			if !refused {
				t.Errorf("not refused: want %s at %s", want.code, want.at)
			}
		})
	}
}
