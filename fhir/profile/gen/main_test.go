//go:build kbvdata

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestTablesUpToDate regenerates the tables from the folders in $KBV_DEFS and compares them with
// the committed file. The definitions are not part of the repository; the committed tables were
// made from these folders, in this order (space-separated in KBV_DEFS, as in make profiles
// DEFS='…'; the order decides which version an unversioned canonical outside a package means):
//
//  1. the dependencies folder of the KBV AWS 1.2.0 validation package (public repository
//     johannesbremer/kbv-mirror, 371-Schnittstellen/PVS-Archivierungs-Wechsel-Schnittstelle/
//     AWS_Service_zur_Validierung.zip.extracted/dependencies/);
//  2. the AWS terminology (the same mirror, KBV_FHIR_AW.zip.extracted/Terminologie/, each
//     resource reduced to url, version, name, status and compose);
//  3. KBV Basis 1.1.3 and 4. de.basisprofil.r4 0.9.13 (public repository ere-health/ere-ps-app,
//     folders KBV_FHIR_eRP_V1/_KBV-Basis and KBV_FHIR_eRP_V1/_Basis_R4 at the parent of commit
//     0ec7e64b);
//  5. to 8. the FHIR packages kbv.ita.erp 1.3.3, kbv.ita.for 1.2.1, kbv.basis 1.7.0 and
//     de.basisprofil.r4 1.5.2, each a folder with its .tgz unpacked (public repository
//     gematik/app-referencevalidator, valmodule-erp/src/main/resources/erp/src-package/, commit
//     5314d58d8efb1c43dfe7b268acdc83a6a8fb9498; the e-prescription 1.3.3 and its FOR 1.2.1 as the
//     KBV publishes them, whose XML form johannesbremer/kbv-mirror holds in part);
//  9. to 12. from the same folder the packages of the e-prescription's profiles in version 1.1.0:
//     kbv.ita.erp 1.1.2, kbv.ita.for 1.1.0, kbv.basis 1.3.0 and de.basisprofil.r4 1.3.2.
func TestTablesUpToDate(t *testing.T) {
	defs := os.Getenv("KBV_DEFS")
	if defs == "" {
		t.Fatal("KBV_DEFS not set: name the definition folders (see above); this test is built with -tags kbvdata")
	}
	g := newGen()
	for _, d := range strings.Fields(defs) {
		if err := g.readDir(d); err != nil {
			t.Fatal(err)
		}
	}
	src, err := emit(g.build())
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../tables_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, committed) {
		t.Error("fhir/profile/tables_gen.go is not what the generator makes of KBV_DEFS: run make profiles")
	}
}
