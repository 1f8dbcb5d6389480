package fhir

import (
	"bytes"
	"context"

	"github.com/beevik/etree"
)

// ReadsItself reports whether Unmarshal reads data without etree's reader.
func ReadsItself(data []byte) bool {
	return (&unmarshaler{s: string(data), doc: etree.NewDocument()}).read()
}

// CopyTree is copyTree, for tests.
var CopyTree = copyTree

// Decode reads data as Parse (fhir) or ReadXML does, with encoding/xml's decoder alone.
func Decode(data []byte, lim Limits, fhir bool) (*etree.Element, error) {
	if lim.MaxAttributes <= 0 {
		lim.MaxAttributes = DefaultMaxAttributes
	}
	return decode(context.Background(), bytes.TrimPrefix(data, utf8BOM), lim, fhir)
}

// Scan reads data as Parse (fhir) or ReadXML does, without the decoder; unusual is true when
// it leaves data to the decoder.
func Scan(data []byte, lim Limits, fhir bool) (root *etree.Element, err error, unusual bool) {
	if lim.MaxAttributes <= 0 {
		lim.MaxAttributes = DefaultMaxAttributes
	}
	root, err = (&builder{ctx: context.Background(), lim: lim, fhir: fhir}).scan(string(bytes.TrimPrefix(data, utf8BOM)))
	return root, err, err == errUnusual
}
