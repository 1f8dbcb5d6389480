package ident

import (
	"strings"
	"unicode/utf8"
)

// Systems maps FHIR identifier systems (and the PZN code system) to the check for their values:
// current and legacy NamingSystem URLs as well as the urn:oid form of the OIDs registered for
// them. Systems that are not listed are not checked.
var Systems = map[string]func(string) error{
	// KVNR, unchangeable part; the PKV number follows the same ten-character scheme.
	"http://fhir.de/sid/gkv/kvid-10":          KVNR,
	"http://fhir.de/NamingSystem/gkv/kvid-10": KVNR, // KBV ERP 1.0.x
	"http://fhir.de/sid/pkv/kvid-10":          KVNR,
	"urn:oid:1.2.276.0.76.4.8":                KVNR,

	// LANR.
	"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR": LANR,
	"http://fhir.de/NamingSystem/kbv/lanr":             LANR,
	"urn:oid:1.2.276.0.76.4.16":                        LANR,

	// ZANR.
	"http://fhir.de/sid/kzbv/zahnarztnummer": ZANR,

	// BSNR.
	"https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR": BSNR,
	"http://fhir.de/NamingSystem/kbv/bsnr":              BSNR,
	"urn:oid:1.2.276.0.76.4.17":                         BSNR,

	// IK.
	"http://fhir.de/sid/arge-ik/iknr":          IK,
	"http://fhir.de/NamingSystem/arge-ik/iknr": IK, // KBV AWS
	"urn:oid:1.2.276.0.76.4.5":                 IK,

	// PZN (a code system: the value is Coding.code).
	"http://fhir.de/CodeSystem/ifa/pzn": PZN,

	// PrescriptionId.
	"https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId": PrescriptionID,
	"https://gematik.de/fhir/NamingSystem/PrescriptionID":                PrescriptionID, // workflow 1.0/1.1

	// Formats without a check digit.
	"https://gematik.de/fhir/sid/telematik-id":               telematikID,
	"http://fhir.de/sid/kzbv/kzvabrechnungsnummer":           digits("a KZV-Abrechnungsnummer is nine digits", 9, 9),
	"http://fhir.de/sid/dkgev/standortnummer":                digits("a Standortnummer is nine digits", 9, 9),
	"http://fhir.de/NamingSystem/asv/teamnummer":             digits("an ASV-Teamnummer is nine digits", 9, 9),
	"http://fhir.de/sid/gkv/kvk-versichertennummer":          digits("a KVK-Versichertennummer is six to twelve digits", 6, 12),
	"http://fhir.de/NamingSystem/gkv/kvk-versichertennummer": digits("a KVK-Versichertennummer is six to twelve digits", 6, 12),
}

// aliases are the other names of an identifier system, each with the name Canonical gives it: the
// legacy NamingSystem URLs (which KBV AWS 1.2.0 and KBV ERP 1.0 fix in their profiles) and the
// urn:oid forms, for the current http://fhir.de/sid/ and KBV URLs.
var aliases = map[string]string{
	"http://fhir.de/NamingSystem/gkv/kvid-10":                "http://fhir.de/sid/gkv/kvid-10",
	"urn:oid:1.2.276.0.76.4.8":                               "http://fhir.de/sid/gkv/kvid-10",
	"http://fhir.de/NamingSystem/kbv/lanr":                   "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR",
	"urn:oid:1.2.276.0.76.4.16":                              "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_ANR",
	"http://fhir.de/NamingSystem/kbv/bsnr":                   "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR",
	"urn:oid:1.2.276.0.76.4.17":                              "https://fhir.kbv.de/NamingSystem/KBV_NS_Base_BSNR",
	"http://fhir.de/NamingSystem/arge-ik/iknr":               "http://fhir.de/sid/arge-ik/iknr",
	"urn:oid:1.2.276.0.76.4.5":                               "http://fhir.de/sid/arge-ik/iknr",
	"http://fhir.de/NamingSystem/bundesaerztekammer/efn":     "http://fhir.de/sid/bundesaerztekammer/efn",
	"http://fhir.de/NamingSystem/gkv/kvk-versichertennummer": "http://fhir.de/sid/gkv/kvk-versichertennummer",
	"https://gematik.de/fhir/NamingSystem/PrescriptionID":    "https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId",
}

// Canonical is the one name of identifier system for all its names (see aliases): a search for a
// KVNR under http://fhir.de/sid/gkv/kvid-10 finds one stored under the NamingSystem URL, and the
// other way round. A system without other names is returned as it is.
func Canonical(system string) string {
	if c, ok := aliases[system]; ok {
		return c
	}
	return system
}

// Check checks value with the check for system, and returns nil for systems it does not know.
func Check(system, value string) error {
	check, ok := Systems[system]
	if !ok {
		return nil
	}
	return check(value)
}

// digits returns a check that value is between minLen and maxLen ASCII digits long; msg says so.
func digits(msg string, minLen, maxLen int) func(string) error {
	err := formatError(msg)
	return func(s string) error {
		if len(s) < minLen || len(s) > maxLen || !isDigits(s) {
			return err
		}
		return nil
	}
}

// maxTelematikID is the longest Telematik-ID the KBV profiles allow.
const maxTelematikID = 128

var errTelematikIDFormat = formatError("a Telematik-ID contains a hyphen and is at most 128 characters long")

// telematikID checks the only rules a Telematik-ID has: it contains a '-' (the E-Rezept-Fachdienst's
// check) and is at most 128 characters long (the KBV profiles' limit).
func telematikID(s string) error {
	if utf8.RuneCountInString(s) > maxTelematikID || !strings.Contains(s, "-") {
		return errTelematikIDFormat
	}
	return nil
}
