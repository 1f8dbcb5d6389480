package ident_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/redclone/red/fhir/ident"
)

// checkCase is one value given to one checker and the outcome expected: nil, ident.ErrFormat or
// ident.ErrCheckDigit. Check digits of values not taken from ti.md or the gematik examples are
// worked out by hand in the comments.
type checkCase struct {
	name  string
	check func(string) error
	value string
	want  error
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check(tc.value)
			assertOutcome(t, err, tc.want)
			if err != nil && tc.value != "" && strings.Contains(err.Error(), tc.value) {
				t.Errorf("error message %q repeats the checked value", err)
			}
		})
	}
}

func assertOutcome(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("got error %q, want nil", err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("got error %v, want one wrapping %q", err, want)
	}
}

func TestKVNR(t *testing.T) {
	runCheckCases(t, []checkCase{
		// X = 24: 2·1 + 4·2 + 1 + 1·2 + 0 + 6·2→3 + 1 + 4·2 + 2 + 3·2 = 33 → 3.
		{"accepts KVNR X110614233 from ti.md", ident.KVNR, "X110614233", nil},
		// K = 11: 1 + 1·2 + 0 + 1·2 + 0 + 1·2 + 2 + 4·2 + 0 + 2·2 = 21 → 1.
		{"accepts KVNR K010124021 from ti.md", ident.KVNR, "K010124021", nil},
		// K = 11: 1 + 2 + 0 + 3·2 + 0 + 1·2 + 8 + 2·2 + 2 + 2·2 = 29 → 9.
		{"accepts KVNR K030182229 from the examples", ident.KVNR, "K030182229", nil},
		// S = 19: 1 + 9·2→9 + 0 + 4·2 + 0 + 4·2 + 6 + 4·2 + 1 + 1·2 = 43 → 3.
		{"accepts KVNR S040464113 from the examples", ident.KVNR, "S040464113", nil},
		// A = 01: 0 + 1·2 + 0·9 … = 2 → 2.
		{"accepts KVNR with letter A", ident.KVNR, "A000000002", nil},
		// Z = 26: 2 + 6·2→3 = 5 → 5.
		{"accepts KVNR with letter Z", ident.KVNR, "Z000000005", nil},
		{"rejects KVNR with wrong check digit", ident.KVNR, "X110614234", ident.ErrCheckDigit},
		// P = 16: 1 + 6·2→3 + 1 + 2·2 + 3 + 4·2 + 6 + 4·2 + 1 + 1·2 = 37 → 7, not 3.
		{"rejects KVNR P123464113 used in the examples with wrong check digit", ident.KVNR, "P123464113", ident.ErrCheckDigit},
		{"rejects KVNR placeholder X123456789 with wrong check digit", ident.KVNR, "X123456789", ident.ErrCheckDigit},
		{"rejects KVNR starting with a digit", ident.KVNR, "1X11043327", ident.ErrFormat},
		{"rejects KVNR with lower-case letter", ident.KVNR, "x110614233", ident.ErrFormat},
		{"rejects KVNR with umlaut", ident.KVNR, "Ä11061423", ident.ErrFormat},
		{"rejects KVNR with nine characters", ident.KVNR, "X11061423", ident.ErrFormat},
		{"rejects KVNR with eleven characters", ident.KVNR, "X1106142330", ident.ErrFormat},
		{"rejects KVNR with surrounding space", ident.KVNR, " X110614233", ident.ErrFormat},
		{"rejects KVNR with two letters", ident.KVNR, "XX10614233", ident.ErrFormat},
		{"rejects empty KVNR", ident.KVNR, "", ident.ErrFormat},
	})
}

func TestLANR(t *testing.T) {
	runCheckCases(t, []checkCase{
		// 8·4 + 6·9 + 4·4 + 6·9 + 8·4 + 3·9 = 215 → 10 − 5 = 5.
		{"accepts LANR 864683589 from ti.md", ident.LANR, "864683589", nil},
		// 8·4 + 3·9 + 8·4 + 3·9 + 8·4 + 2·9 = 168 → 10 − 8 = 2.
		{"accepts LANR 838382202 from the examples", ident.LANR, "838382202", nil},
		// 1·4 + 2·9 + 3·4 + 4·9 + 5·4 + 6·9 = 144 → 10 − 4 = 6.
		{"accepts LANR 123456628 from the examples", ident.LANR, "123456628", nil},
		// Sum 0 → (10 − 0) mod 10 = 0.
		{"accepts LANR whose check digit is zero", ident.LANR, "000000000", nil},
		// As a plain LANR 555555 gives 195 → 5, not 1: only the pseudo-LANR rule accepts it.
		{"accepts pseudo-LANR 555555 without check digit", ident.LANR, "555555123", nil},
		{"rejects LANR with wrong check digit", ident.LANR, "864683689", ident.ErrCheckDigit},
		{"rejects LANR with 555556 prefix and wrong check digit", ident.LANR, "555556123", ident.ErrCheckDigit},
		{"rejects LANR with a letter", ident.LANR, "86468358A", ident.ErrFormat},
		{"rejects LANR with eight digits", ident.LANR, "86468358", ident.ErrFormat},
		{"rejects LANR with ten digits", ident.LANR, "8646835890", ident.ErrFormat},
		{"rejects pseudo-LANR with eight digits", ident.LANR, "55555512", ident.ErrFormat},
		{"rejects empty LANR", ident.LANR, "", ident.ErrFormat},
	})
}

func TestZANR(t *testing.T) {
	runCheckCases(t, []checkCase{
		{"accepts ZANR of nine digits", ident.ZANR, "123456789", nil},
		{"rejects ZANR with eight digits", ident.ZANR, "12345678", ident.ErrFormat},
		{"rejects ZANR with a letter", ident.ZANR, "12345678Z", ident.ErrFormat},
	})
}

func TestBSNR(t *testing.T) {
	runCheckCases(t, []checkCase{
		{"accepts BSNR 721111100 from the examples", ident.BSNR, "721111100", nil},
		{"accepts BSNR with leading zero", ident.BSNR, "031234567", nil},
		{"accepts hospital BSNR with prefix 35", ident.BSNR, "351234500", nil},
		{"rejects BSNR with eight digits", ident.BSNR, "72111110", ident.ErrFormat},
		{"rejects BSNR with ten digits", ident.BSNR, "7211111000", ident.ErrFormat},
		{"rejects BSNR with a letter", ident.BSNR, "72111110X", ident.ErrFormat},
		{"rejects BSNR with a sign", ident.BSNR, "-72111110", ident.ErrFormat},
		{"rejects empty BSNR", ident.BSNR, "", ident.ErrFormat},
	})
}

func TestIK(t *testing.T) {
	runCheckCases(t, []checkCase{
		// Digits 3–8 = 3 5 2 4 1 0: 6 + 5 + 4 + 4 + 2 + 0 = 21 → 1.
		{"accepts IK 103524101 from ti.md", ident.IK, "103524101", nil},
		// 0 3 2 6 8 2: 0 + 3 + 4 + 6 + 16→7 + 2 = 22 → 2.
		{"accepts IK 260326822 from the IK circular", ident.IK, "260326822", nil},
		// 9 5 1 9 0 0: 18→9 + 5 + 2 + 9 + 0 + 0 = 25 → 5.
		{"accepts IK 109519005 from the examples", ident.IK, "109519005", nil},
		// The classification digits do not count: 99 instead of 10 keeps the check digit.
		{"accepts IK whatever its classification digits", ident.IK, "993524101", nil},
		// 7 6 5 4 3 2: 14→5 + 6 + 10→1 + 4 + 6 + 2 = 24 → 4, not 1.
		{"rejects IK placeholder 987654321 with wrong check digit", ident.IK, "987654321", ident.ErrCheckDigit},
		{"rejects IK with wrong check digit", ident.IK, "103524102", ident.ErrCheckDigit},
		{"rejects IK with ten digits", ident.IK, "1035241010", ident.ErrFormat},
		{"rejects IK with eight digits", ident.IK, "10352410", ident.ErrFormat},
		{"rejects IK with a letter", ident.IK, "10352410I", ident.ErrFormat},
		{"rejects empty IK", ident.IK, "", ident.ErrFormat},
	})
}

func TestPZN(t *testing.T) {
	runCheckCases(t, []checkCase{
		// 0·1 + 6·2 + 3·3 + 1·4 + 3·5 + 7·6 + 2·7 = 96 = 8·11 + 8 → 8.
		{"accepts PZN 06313728 from ti.md", ident.PZN, "06313728", nil},
		// 0·1 + 2·2 + 5·3 + 3·4 + 2·5 + 7·6 + 4·7 = 111 = 10·11 + 1 → 1.
		{"accepts PZN 02532741 from the examples", ident.PZN, "02532741", nil},
		// 1·1 + 0·2 + 2·3 + 5·4 + 9·5 + 4·6 + 9·7 = 159 = 14·11 + 5 → 5.
		{"accepts PZN 10259495 from the examples", ident.PZN, "10259495", nil},
		{"accepts PZN whose check digit is zero", ident.PZN, "00000000", nil},
		{"rejects PZN with wrong check digit", ident.PZN, "06313727", ident.ErrCheckDigit},
		// 3·7 = 21 = 11 + 10: the check value would be 10, so every last digit is wrong.
		{"rejects PZN whose check value would be ten", ident.PZN, "00000030", ident.ErrCheckDigit},
		{"rejects PZN whose check value would be ten whatever its last digit", ident.PZN, "00000039", ident.ErrCheckDigit},
		{"rejects old seven-digit PZN", ident.PZN, "6313728", ident.ErrFormat},
		{"rejects PZN with nine digits", ident.PZN, "063137280", ident.ErrFormat},
		{"rejects PZN with a letter", ident.PZN, "0631372X", ident.ErrFormat},
		{"rejects PZN with a PZN- prefix", ident.PZN, "PZN-06313728", ident.ErrFormat},
		{"rejects empty PZN", ident.PZN, "", ident.ErrFormat},
	})
}

func TestPrescriptionID(t *testing.T) {
	// 10² ≡ 3 and 10¹⁴ ≡ 53 (mod 97); 160 ≡ 63, so 160·10¹⁴ ≡ 63·53 = 3339 ≡ 41.
	runCheckCases(t, []checkCase{
		// (41 + 100) mod 97 = 44 → 98 − 44 = 54.
		{"accepts PrescriptionId 160.000.000.000.001.54 from ti.md", ident.PrescriptionID, "160.000.000.000.001.54", nil},
		{"accepts PrescriptionId 160.000.006.933.680.85 from ti.md", ident.PrescriptionID, "160.000.006.933.680.85", nil},
		{"accepts PrescriptionId 169.018.562.305.023.72 from the examples", ident.PrescriptionID, "169.018.562.305.023.72", nil},
		{"accepts PrescriptionId 200.643.100.572.979.08 from the examples", ident.PrescriptionID, "200.643.100.572.979.08", nil},
		// (41 + 1900) mod 97 = (41 + 57) mod 97 = 1 → 98 − 1 = 97.
		{"accepts PrescriptionId with check value 97", ident.PrescriptionID, "160.000.000.000.019.97", nil},
		{"rejects PrescriptionId with check alias 00 for 97", ident.PrescriptionID, "160.000.000.000.019.00", ident.ErrCheckDigit},
		{"rejects PrescriptionId with check alias 01 for 98", ident.PrescriptionID, "160.000.000.000.051.01", ident.ErrCheckDigit},
		{"rejects PrescriptionId with check alias 99 for 02", ident.PrescriptionID, "160.000.000.000.083.99", ident.ErrCheckDigit},
		{"rejects PrescriptionId placeholder 160.000.000.000.000.01", ident.PrescriptionID, "160.000.000.000.000.01", ident.ErrCheckDigit},
		{"rejects PrescriptionId placeholder 200.000.000.000.000.01", ident.PrescriptionID, "200.000.000.000.000.01", ident.ErrCheckDigit},
		{"rejects PrescriptionId with swapped digits", ident.PrescriptionID, "160.000.000.000.010.54", ident.ErrCheckDigit},
		{"rejects PrescriptionId without dots", ident.PrescriptionID, "16000000000000154", ident.ErrFormat},
		{"rejects PrescriptionId with dashes", ident.PrescriptionID, "160-000-000-000-001-54", ident.ErrFormat},
		{"rejects PrescriptionId with one check digit", ident.PrescriptionID, "160.000.000.000.001.5", ident.ErrFormat},
		{"rejects PrescriptionId with a letter", ident.PrescriptionID, "160.000.000.000.00A.54", ident.ErrFormat},
		{"rejects PrescriptionId with misplaced dot", ident.PrescriptionID, "1600.00.000.000.001.54", ident.ErrFormat},
		{"rejects empty PrescriptionId", ident.PrescriptionID, "", ident.ErrFormat},
	})
}

func TestNewPrescriptionID(t *testing.T) {
	tests := []struct {
		name     string
		flowType int
		serial   uint64
		want     string
		wantErr  bool
	}{
		{"builds the id ti.md gives for serial 1", 160, 1, "160.000.000.000.001.54", false},
		{"builds the id ti.md gives for serial 6933680", 160, 6_933_680, "160.000.006.933.680.85", false},
		{"builds an id from the examples for flow type 200", 200, 643_100_572_979, "200.643.100.572.979.08", false},
		{"builds an id with check value 97", 160, 19, "160.000.000.000.019.97", false},
		{"builds an id with the largest serial", 999, 999_999_999_999, "", false},
		{"refuses a serial of thirteen digits", 160, 1_000_000_000_000, "", true},
		{"refuses a flow type of four digits", 1600, 1, "", true},
		{"refuses a negative flow type", -1, 1, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ident.NewPrescriptionID(tc.flowType, tc.serial)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if err := ident.PrescriptionID(got); err != nil {
				t.Errorf("built id %q does not validate: %v", got, err)
			}
		})
	}
}

// TestSingleDigitChanges relies on a property of the check-digit schemes: changing any one
// covered digit of a valid value makes it invalid. (Not so for the LANR, whose weight 4 misses
// changes by 5, nor for an IK's first two digits, which the check does not cover.)
func TestSingleDigitChanges(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		value string
		from  int // index of the first digit the check covers
	}{
		{"rejects every single-digit change of a KVNR", ident.KVNR, "X110614233", 1},
		{"rejects every single-digit change of an IK's serial and check digit", ident.IK, "103524101", 2},
		{"rejects every single-digit change of a PZN", ident.PZN, "06313728", 0},
		{"rejects every single-digit change of a PrescriptionId", ident.PrescriptionID, "160.000.006.933.680.85", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(tc.value); err != nil {
				t.Fatalf("starting value is invalid: %v", err)
			}
			b := []byte(tc.value)
			for i := tc.from; i < len(b); i++ {
				c := b[i]
				if c < '0' || c > '9' {
					continue
				}
				for d := byte('0'); d <= '9'; d++ {
					if d == c {
						continue
					}
					b[i] = d
					if err := tc.check(string(b)); !errors.Is(err, ident.ErrCheckDigit) {
						t.Errorf("%q (changed at position %d): got %v, want a check-digit error", b, i+1, err)
					}
				}
				b[i] = c
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		system string
		value  string
		want   error
	}{
		{"checks KVNR under the current GKV system", "http://fhir.de/sid/gkv/kvid-10", "X110614234", ident.ErrCheckDigit},
		{"checks KVNR under the legacy NamingSystem", "http://fhir.de/NamingSystem/gkv/kvid-10", "X110614234", ident.ErrCheckDigit},
		{"checks KVNR under the PKV system", "http://fhir.de/sid/pkv/kvid-10", "x110614233", ident.ErrFormat},
		{"accepts valid KVNR under its OID", "urn:oid:1.2.276.0.76.4.8", "X110614233", nil},
		{"checks LANR under KBV_NS_Base_ANR", "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR", "864683689", ident.ErrCheckDigit},
		{"checks LANR under the legacy NamingSystem", "http://fhir.de/NamingSystem/kbv/lanr", "86468358", ident.ErrFormat},
		{"checks ZANR format", "http://fhir.de/sid/kzbv/zahnarztnummer", "1234567", ident.ErrFormat},
		{"checks BSNR under KBV_NS_Base_BSNR", "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR", "72111110", ident.ErrFormat},
		{"accepts BSNR under the legacy NamingSystem", "http://fhir.de/NamingSystem/kbv/bsnr", "721111100", nil},
		{"checks IK under arge-ik/iknr", "http://fhir.de/sid/arge-ik/iknr", "987654321", ident.ErrCheckDigit},
		{"checks IK under the legacy NamingSystem", "http://fhir.de/NamingSystem/arge-ik/iknr", "1035241010", ident.ErrFormat},
		{"checks PZN under ifa/pzn", "http://fhir.de/CodeSystem/ifa/pzn", "06313727", ident.ErrCheckDigit},
		{"checks PrescriptionId under GEM_ERP_NS_PrescriptionId", "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId", "160.000.000.000.000.01", ident.ErrCheckDigit},
		{"accepts PrescriptionId under the legacy NamingSystem", "https://gematik.de/fhir/NamingSystem/PrescriptionID", "160.000.000.000.001.54", nil},
		{"accepts Telematik-ID with a hyphen", "https://gematik.de/fhir/sid/telematik-id", "3-SMC-B-Testkarte-883110000116873", nil},
		{"rejects Telematik-ID without a hyphen", "https://gematik.de/fhir/sid/telematik-id", "883110000116873", ident.ErrFormat},
		{"rejects Telematik-ID longer than 128 characters", "https://gematik.de/fhir/sid/telematik-id", "1-" + strings.Repeat("9", 127), ident.ErrFormat},
		{"accepts Telematik-ID of 128 multi-byte characters", "https://gematik.de/fhir/sid/telematik-id", "1-" + strings.Repeat("ä", 126), nil},
		{"rejects KZV-Abrechnungsnummer with ten digits", "http://fhir.de/sid/kzbv/kzvabrechnungsnummer", "1234567890", ident.ErrFormat},
		{"rejects Standortnummer with a letter", "http://fhir.de/sid/dkgev/standortnummer", "77123456X", ident.ErrFormat},
		{"accepts ASV-Teamnummer of nine digits", "http://fhir.de/NamingSystem/asv/teamnummer", "123456789", nil},
		{"accepts KVK-Versichertennummer of six digits", "http://fhir.de/sid/gkv/kvk-versichertennummer", "123456", nil},
		{"rejects KVK-Versichertennummer of thirteen digits", "http://fhir.de/NamingSystem/gkv/kvk-versichertennummer", "1234567890123", ident.ErrFormat},
		{"ignores an unknown system", "http://www.acme.com/identifiers/patient", "anything", nil},
		{"ignores a missing system", "", "X110614234", nil},
		{"does not trim the system", "http://fhir.de/sid/gkv/kvid-10 ", "X110614234", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertOutcome(t, ident.Check(tc.system, tc.value), tc.want)
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		value string
		want  string
	}{
		{"says what a KVNR looks like", ident.KVNR, "X11061423", "wrong format: a KVNR is one capital letter"},
		{"says the KVNR's check digit is wrong", ident.KVNR, "X110614234", "wrong check digit: the KVNR's last digit"},
		{"says what a LANR looks like", ident.LANR, "8646835", "wrong format: a LANR is nine digits"},
		{"says the LANR's seventh digit is wrong", ident.LANR, "864683689", "wrong check digit: the LANR's seventh digit"},
		{"says what an IK looks like", ident.IK, "1035241010", "wrong format: an IK is nine digits"},
		{"says the PZN's check value would be ten", ident.PZN, "00000030", "check value ten"},
		{"says what a PrescriptionId looks like", ident.PrescriptionID, "160", "ddd.ddd.ddd.ddd.ddd.dd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check(tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a message containing %q", err, tc.want)
			}
		})
	}
}
