// Package admission reads and writes the admission extension (Common PKI AdmissionSyntax,
// OID 1.3.36.8.3.3) in which TI card certificates carry their holder's professions (item and
// OID, gemSpec_OID) and Telematik-ID (registrationNumber). RED's TI actions read it from the
// certificates of real and simulated cards; the simulator CA in package simpki writes it.
package admission

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
)

// OID identifies the admission extension.
var OID = asn1.ObjectIdentifier{1, 3, 36, 8, 3, 3}

// Admission is the content of the admission extension of a TI certificate.
type Admission struct {
	ProfessionItems    []string // e.g. "Betriebsstätte Arzt"
	ProfessionOIDs     []string // e.g. "1.2.276.0.76.4.50"
	RegistrationNumber string   // the Telematik-ID
}

type admissionSyntax struct {
	Contents []admissions
}

type admissions struct {
	ProfessionInfos []professionInfo
}

type professionInfo struct {
	ProfessionItems    []asn1.RawValue         // DirectoryString, written as UTF8String
	ProfessionOIDs     []asn1.ObjectIdentifier `asn1:"optional"`
	RegistrationNumber string                  `asn1:"printable,optional"`
}

// Of reads the admission extension of a certificate: the professions of every ProfessionInfo
// and the first registration number. ok is false when the certificate has none or it cannot be
// read.
func Of(cert *x509.Certificate) (a Admission, ok bool) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(OID) {
			continue
		}
		var as admissionSyntax
		if _, err := asn1.Unmarshal(ext.Value, &as); err != nil {
			return Admission{}, false
		}
		for _, c := range as.Contents {
			for _, pi := range c.ProfessionInfos {
				for _, item := range pi.ProfessionItems {
					a.ProfessionItems = append(a.ProfessionItems, string(item.Bytes))
				}
				for _, oid := range pi.ProfessionOIDs {
					a.ProfessionOIDs = append(a.ProfessionOIDs, oid.String())
				}
				if a.RegistrationNumber == "" {
					a.RegistrationNumber = pi.RegistrationNumber
				}
			}
		}
		return a, true
	}
	return Admission{}, false
}

// TelematikID returns the Telematik-ID a certificate carries, or "".
func TelematikID(cert *x509.Certificate) string {
	a, _ := Of(cert)
	return a.RegistrationNumber
}

// Marshal encodes a as the value of an admission extension with one ProfessionInfo.
func (a Admission) Marshal() ([]byte, error) {
	info := professionInfo{ProfessionItems: []asn1.RawValue{}, RegistrationNumber: a.RegistrationNumber}
	for _, item := range a.ProfessionItems {
		info.ProfessionItems = append(info.ProfessionItems, asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(item)})
	}
	for _, s := range a.ProfessionOIDs {
		oid, err := parseOID(s)
		if err != nil {
			return nil, err
		}
		info.ProfessionOIDs = append(info.ProfessionOIDs, oid)
	}
	for _, c := range a.RegistrationNumber {
		if !isPrintable(c) {
			return nil, fmt.Errorf("admission: Telematik-ID %q has characters a PrintableString cannot hold", a.RegistrationNumber)
		}
	}
	return asn1.Marshal(admissionSyntax{Contents: []admissions{{ProfessionInfos: []professionInfo{info}}}})
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || strconv.Itoa(n) != part {
			return nil, fmt.Errorf("admission: %q is not an OID", s)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("admission: %q is not an OID", s)
	}
	return oid, nil
}

func isPrintable(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune(" '()+,-./:=?", c)
}
