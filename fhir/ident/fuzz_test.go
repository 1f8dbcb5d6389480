package ident_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redclone/red/fhir/ident"
)

// checkers returns every checker: the exported ones and those reachable only through Systems.
func checkers() map[string]func(string) error {
	all := map[string]func(string) error{
		"KVNR":           ident.KVNR,
		"LANR":           ident.LANR,
		"ZANR":           ident.ZANR,
		"BSNR":           ident.BSNR,
		"IK":             ident.IK,
		"PZN":            ident.PZN,
		"PrescriptionId": ident.PrescriptionID,
	}
	for system, check := range ident.Systems {
		all[system] = check
	}
	return all
}

// FuzzCheckers feeds arbitrary strings to every checker: none may panic, every error must say
// whether the format or the check digit is wrong, and no message may repeat the value.
func FuzzCheckers(f *testing.F) {
	for _, seed := range []string{
		"", "X110614233", "x110614233", "Ä11061423", "864683589", "555555123", "103524101",
		"06313728", "00000030", "160.000.000.000.001.54", "160.000.000.000.019.00",
		"3-SMC-B-Testkarte-883110000116873", "\xff\xfe", strings.Repeat("9", 200),
	} {
		f.Add(seed)
	}
	all := checkers()
	f.Fuzz(func(t *testing.T, s string) {
		for name, check := range all {
			err := check(s)
			if err == nil {
				continue
			}
			if !errors.Is(err, ident.ErrFormat) && !errors.Is(err, ident.ErrCheckDigit) {
				t.Errorf("%s: error %q wraps neither ErrFormat nor ErrCheckDigit", name, err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q repeats the value", name, err)
			}
		}
	})
}

// FuzzNewPrescriptionID checks that every id NewPrescriptionID builds is accepted.
func FuzzNewPrescriptionID(f *testing.F) {
	f.Add(160, uint64(1))
	f.Add(200, uint64(999_999_999_999))
	f.Add(0, uint64(0))
	f.Add(-5, uint64(1<<63))
	f.Fuzz(func(t *testing.T, flowType int, serial uint64) {
		id, err := ident.NewPrescriptionID(flowType, serial)
		if err != nil {
			return
		}
		if err := ident.PrescriptionID(id); err != nil {
			t.Errorf("NewPrescriptionID(%d, %d) = %q, which does not validate: %v", flowType, serial, id, err)
		}
	})
}
