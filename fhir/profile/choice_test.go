package profile

import (
	"strings"
	"testing"
)

// KBV Basis narrows Condition.onset[x] to Period and slices it by type into onsetPeriod and
// onsetDateTime: both types are allowed in a KBV_PR_AW_Diagnose, others are not.
func TestChoiceSlicedByTypeAllowsTheSlicesTypes(t *testing.T) {
	for _, tc := range []struct {
		name, onset string
		refused     bool
	}{
		{"accepts onsetDateTime", `<onsetDateTime value="2024-05-01"/>`, false},
		{"accepts onsetPeriod", `<onsetPeriod><start value="2024-05-01"/></onsetPeriod>`, false},
		{"refuses onsetString", `<onsetString value="seit Mai"/>`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := parse(t, head("Condition", "d1", "KBV_PR_AW_Diagnose", "Diagnose")+tc.onset+`</Condition>`)
			refused := false
			for _, is := range Validate(res, "Condition", Options{}) {
				if strings.Contains(is.Expression, "onset") && strings.Contains(is.Diagnostics, "not allowed") {
					refused = true
				}
			}
			if refused != tc.refused {
				t.Errorf("refused = %t, want %t: %v", refused, tc.refused, found(Validate(res, "Condition", Options{})))
			}
		})
	}
}
