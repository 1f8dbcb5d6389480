// Package ident checks German health-care identifiers: the KVNR of insured persons, the LANR
// and ZANR of doctors and dentists, the BSNR of practice sites, the IK of institutions, the PZN
// of medicines and the PrescriptionId of the E-Rezept, with their check digits, and it maps FHIR
// identifier systems to the check that applies to them.
//
// Every checker returns nil for a valid value. Otherwise its error wraps either [ErrFormat] or
// [ErrCheckDigit], and its message names the identifier and what is wrong but never repeats the
// checked value, so it can be shown to API clients without echoing person data.
package ident

import (
	"errors"
	"fmt"
	"strings"
)

// ErrFormat is wrapped by every error about a value that has the wrong length or characters for
// its identifier type.
var ErrFormat = errors.New("wrong format")

// ErrCheckDigit is wrapped by every error about a well-formed value whose check digit does not
// match the other digits.
var ErrCheckDigit = errors.New("wrong check digit")

func formatError(msg string) error { return fmt.Errorf("%w: %s", ErrFormat, msg) }

func checkDigitError(msg string) error { return fmt.Errorf("%w: %s", ErrCheckDigit, msg) }

// The errors are built once: they never contain the checked value, so they can be shared.
var (
	errKVNRFormat = formatError("a KVNR is one capital letter A to Z (no umlaut) followed by nine digits")
	errKVNRCheck  = checkDigitError("the KVNR's last digit does not match its letter and the eight digits before it")
	errLANRFormat = formatError("a LANR is nine digits")
	errLANRCheck  = checkDigitError("the LANR's seventh digit does not match its first six digits")
	errZANRFormat = formatError("a ZANR is nine digits")
	errBSNRFormat = formatError("a BSNR is nine digits")
	errIKFormat   = formatError("an IK is nine digits")
	errIKCheck    = checkDigitError("the IK's ninth digit does not match its third to eighth digits")
	errPZNFormat  = formatError("a PZN is eight digits")
	errPZNCheck   = checkDigitError("the PZN's eighth digit does not match its first seven digits")
	errPZNNever   = checkDigitError("the PZN's first seven digits give the check value ten, so no PZN with these digits is ever issued")
	errRxFormat   = formatError("a PrescriptionId is a three-digit flow type, a twelve-digit serial number in four groups of three digits and two check digits, all separated by dots (ddd.ddd.ddd.ddd.ddd.dd)")
	errRxCheck    = checkDigitError("the PrescriptionId's last two digits do not match the fifteen digits before them")
)

// KVNR checks the unchangeable ten-character part of a Krankenversichertennummer: a capital
// letter and nine digits, the last of which is a check digit. The letter counts as its two-digit
// position in the alphabet (A = 01 … Z = 26); together with the next eight digits that gives ten
// digits, weighted 1, 2, 1, 2, … from the left. The cross sums of the products add up to a number
// whose last digit is the check digit.
func KVNR(s string) error {
	if len(s) != 10 || s[0] < 'A' || s[0] > 'Z' || !isDigits(s[1:]) {
		return errKVNRFormat
	}
	letter := int(s[0]-'A') + 1
	var d [10]int
	d[0], d[1] = letter/10, letter%10
	for i := 1; i <= 8; i++ {
		d[i+1] = int(s[i] - '0')
	}
	sum := 0
	for i, v := range d {
		sum += crossSum(v * (1 + i%2))
	}
	if sum%10 != int(s[9]-'0') {
		return errKVNRCheck
	}
	return nil
}

// pseudoLANRPrefix starts the pseudo-LANR used by hospitals and ASV teams; the digits after it
// carry no check digit.
const pseudoLANRPrefix = "555555"

// LANR checks a lebenslange Arztnummer: nine digits, of which the first six number the doctor,
// the seventh is the check digit and the last two give the specialist group. The first six digits
// are weighted 4, 9, 4, 9, 4, 9 (no cross sum); the check digit is what brings their sum up to the
// next multiple of ten. Pseudo-LANRs starting with 555555 are accepted without a check digit.
func LANR(s string) error {
	if len(s) != 9 || !isDigits(s) {
		return errLANRFormat
	}
	if strings.HasPrefix(s, pseudoLANRPrefix) {
		return nil
	}
	sum := 0
	for i := range 6 {
		w := 4
		if i%2 == 1 {
			w = 9
		}
		sum += int(s[i]-'0') * w
	}
	if (10-sum%10)%10 != int(s[6]-'0') {
		return errLANRCheck
	}
	return nil
}

// ZANR checks a Zahnarztnummer: nine digits (a seven-digit number and a two-digit specialist
// designation). No official check-digit rule is known, so only the format is checked.
func ZANR(s string) error {
	if len(s) != 9 || !isDigits(s) {
		return errZANRFormat
	}
	return nil
}

// BSNR checks a Betriebsstättennummer: nine digits. A BSNR has no check digit.
func BSNR(s string) error {
	if len(s) != 9 || !isDigits(s) {
		return errBSNRFormat
	}
	return nil
}

// IK checks an Institutionskennzeichen: nine digits, of which the first two classify the
// institution and take no part in the check, the next six are the serial number and the last is
// the check digit. The serial digits are weighted 2, 1, 2, 1, 2, 1; the last digit of the sum of
// the products' cross sums is the check digit.
func IK(s string) error {
	if len(s) != 9 || !isDigits(s) {
		return errIKFormat
	}
	sum := 0
	for i := 2; i < 8; i++ {
		sum += crossSum(int(s[i]-'0') * (2 - i%2))
	}
	if sum%10 != int(s[8]-'0') {
		return errIKCheck
	}
	return nil
}

// PZN checks a Pharmazentralnummer (PZN-8): eight digits, the last being the check digit. The
// first seven digits are weighted 1 to 7; the sum modulo 11 is the check digit. A remainder of 10
// is never issued, so such a PZN is always wrong.
func PZN(s string) error {
	if len(s) != 8 || !isDigits(s) {
		return errPZNFormat
	}
	sum := 0
	for i := range 7 {
		sum += int(s[i]-'0') * (i + 1)
	}
	switch check := sum % 11; {
	case check == 10:
		return errPZNNever
	case check != int(s[7]-'0'):
		return errPZNCheck
	}
	return nil
}

// isDigits reports whether s is non-empty and only ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// crossSum returns the digit sum of a product of two digits (0 … 81).
func crossSum(n int) int { return n/10 + n%10 }
