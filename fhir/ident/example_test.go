package ident_test

import (
	"errors"
	"fmt"

	"github.com/redclone/red/fhir/ident"
)

func ExampleCheck() {
	err := ident.Check("http://fhir.de/sid/gkv/kvid-10", "X110614234")
	fmt.Println(err)
	fmt.Println(errors.Is(err, ident.ErrCheckDigit))
	fmt.Println(ident.Check("http://www.acme.com/identifiers/patient", "anything"))
	// Output:
	// wrong check digit: the KVNR's last digit does not match its letter and the eight digits before it
	// true
	// <nil>
}

func ExampleNewPrescriptionID() {
	id, err := ident.NewPrescriptionID(160, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(id)
	// Output: 160.000.000.000.001.54
}
