package telematik

import (
	"testing"

	"github.com/redclone/red/fhir"
)

func TestFlowType(t *testing.T) {
	for _, tc := range []struct {
		name, bundle string
		want         int
	}{
		{"GKV without PrescriptionId", `<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Coverage><type><coding><code value="GKV"/></coding></type></Coverage></resource></entry></Bundle>`, 160},
		{"PKV", `<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Coverage><type><coding><code value="PKV"/></coding></type></Coverage></resource></entry></Bundle>`, 200},
		{"direct assignment named by the PrescriptionId", `<Bundle xmlns="http://hl7.org/fhir"><identifier><value value="169.000.000.000.000.00"/></identifier></Bundle>`, 169},
		{"PKV direct assignment", `<Bundle xmlns="http://hl7.org/fhir"><identifier><value value="209.000.000.000.000.00"/></identifier></Bundle>`, 209},
		{"an unknown flow type in the PrescriptionId", `<Bundle xmlns="http://hl7.org/fhir"><identifier><value value="999.000.000.000.000.00"/></identifier></Bundle>`, 160},
	} {
		b, err := fhir.Parse([]byte(tc.bundle), fhir.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		cov := b.FindElement("entry/resource/Coverage")
		if got := flowType(b, cov); got != tc.want {
			t.Errorf("%s: flow type %d, want %d", tc.name, got, tc.want)
		}
	}
}
