package kbv

// Composition: the e-prescription's KBV_PR_ERP_Composition. Its profile binds the legal basis
// (KBV_EX_FOR_Legal_basis) to KBV_VS_SFHIR_KBV_STATUSKENNZEICHEN, a KBV key table the ERP and FOR
// packages bind but do not ship, so the profile tables cannot check its codes: the rule is here.

func init() { register("Composition", composition) }

const (
	extLegalBasis       = kbvSD + "KBV_EX_FOR_Legal_basis"
	csStatuskennzeichen = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_STATUSKENNZEICHEN"
)

// statuskennzeichen is KBV_CS_SFHIR_KBV_STATUSKENNZEICHEN: without a mark (00), ASV (01),
// Entlassmanagement (04), TSS (07), each also with the mark of a substitute prescription (10, 11,
// 14, 17).
var statuskennzeichen = codes("00", "01", "04", "07", "10", "11", "14", "17")

func composition(c *Cursor) {
	for _, lb := range c.Extension(extLegalBasis) {
		lb.ValueCoding(csStatuskennzeichen, statuskennzeichen)
	}
}
