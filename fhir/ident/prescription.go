package ident

import (
	"errors"
	"fmt"
)

// maxSerial is the largest running number a PrescriptionId can hold (twelve digits).
const maxSerial = 999_999_999_999

// PrescriptionID checks an E-Rezept PrescriptionId (Task id) of the form ddd.ddd.ddd.ddd.ddd.dd:
// a three-digit flow type, a twelve-digit running number in four groups and two check digits.
// The check digits follow ISO 7064 MOD 97-10 over the fifteen digits before them; as ISO 7064
// prescribes, only the check values 02 to 98 are accepted, not the aliases 00, 01 and 99 that
// would also leave the remainder 1.
func PrescriptionID(s string) error {
	if len(s) != 22 {
		return errRxFormat
	}
	var n uint64 // the fifteen digits before the check digits
	check := 0
	for i := range len(s) {
		c := s[i]
		if i%4 == 3 {
			if c != '.' {
				return errRxFormat
			}
			continue
		}
		if c < '0' || c > '9' {
			return errRxFormat
		}
		if i < 19 {
			n = n*10 + uint64(c-'0')
		} else {
			check = check*10 + int(c-'0')
		}
	}
	if mod97Check(n) != check {
		return errRxCheck
	}
	return nil
}

// NewPrescriptionID builds a valid PrescriptionId for a flow type (for example 160 for GKV
// medicines, 200 for PKV) from a running number of at most twelve digits. Simulators use it to
// issue ids the way the E-Rezept-Fachdienst does.
func NewPrescriptionID(flowType int, serial uint64) (string, error) {
	if flowType < 0 || flowType > 999 {
		return "", errors.New("a flow type has at most three digits")
	}
	if serial > maxSerial {
		return "", errors.New("a PrescriptionId's running number has at most twelve digits")
	}
	n := uint64(flowType)*(maxSerial+1) + serial
	return fmt.Sprintf("%03d.%03d.%03d.%03d.%03d.%02d",
		flowType, serial/1e9, serial/1e6%1000, serial/1e3%1000, serial%1000, mod97Check(n)), nil
}

// mod97Check returns the ISO 7064 MOD 97-10 check value (02 … 98) for the digits of n: the number
// that, appended as two digits, makes the whole number leave the remainder 1 when divided by 97.
// n has at most fifteen digits, so n*100 does not overflow.
func mod97Check(n uint64) int {
	return 98 - int(n*100%97)
}
