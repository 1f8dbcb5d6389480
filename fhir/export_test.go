package fhir

import "github.com/beevik/etree"

// ReadsItself reports whether Unmarshal reads data without etree's reader.
func ReadsItself(data []byte) bool {
	return (&unmarshaler{s: string(data), doc: etree.NewDocument()}).read()
}

// CopyTree is copyTree, for tests.
var CopyTree = copyTree
