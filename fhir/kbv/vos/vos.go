// Package vos turns RED's legacy prescription format, the "Speicherbundle" of the KBV's
// Verordnungssoftware-Schnittstelle (§ 371 Abs. 1 Nr. 2 SGB V, KBV_PR_VoS_Bundle_VoS_PVS 2.1.x),
// into the e-prescription bundle red validates and signs (KBV_PR_ERP_Bundle 1.3 with the KBV FOR
// 1.2 profiles).
//
// Two ways in. A Speicherbundle that carries an unsigned e-prescription bundle — as an entry's
// resource, or base64 in a DocumentReference attachment of an XML content type — yields that
// bundle (one at most). Otherwise its VoS resources are mapped onto the ERP and FOR profiles:
// KBV_PR_VoS_Patient, _Coverage, _Practitioner and _Organization become KBV_PR_FOR_*,
// KBV_PR_VoS_Medication_PZN, _Compounding, _FreeText and _Ingredient become
// KBV_PR_ERP_Medication_*, KBV_PR_VoS_Prescription (one per bundle) becomes
// KBV_PR_ERP_Prescription, its requester a Practitioner (a PractitionerRole is followed to its
// practitioner and organization), KBV_EX_VoS_Medication_Category becomes
// KBV_EX_ERP_Medication_Category, and the legal basis (KBV_EX_FOR_Legal_basis, on the VoS
// Composition or Prescription) moves to the KBV_PR_ERP_Composition built from the prescription:
// subject, author (the practitioner), custodian (the organization), date and the sections of the
// prescription and its coverage, and its author Device: the KBV Prüfnummer a KBV_PR_VoS_Device_PVS
// carries (identifier KBV_NS_FOR_Pruefnummer). Extensions the ERP profiles have no place for
// (KBV_EX_VoS_Medication_isOverTheCounter, KBV_EX_VoS_PrescriptionType, the BtM and T marks,
// any other KBV_EX_VoS_*) and resources outside a prescription (documents, devices, findings,
// medication plans) are left out, each with a warning.
//
// Nothing is invented: what the ERP profiles need and the Speicherbundle does not carry stays
// missing, and the validation of the converted bundle reports it. Locate names every location of
// the converted bundle by the element of the posted bundle it came from.
//
// The VoS StructureDefinitions are not in the profile tables of fhir/profile: the posted bundle
// is not validated against them, only the converted bundle against the ERP and FOR profiles.
package vos

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

// Profiles.
const (
	kbvSD = "https://fhir.kbv.de/StructureDefinition/"
	// BundleProfile is the Speicherbundle's profile (without version).
	BundleProfile = kbvSD + "KBV_PR_VoS_Bundle_VoS_PVS"
	erpBundle     = kbvSD + "KBV_PR_ERP_Bundle"
	erpVersion    = "|1.3"
	forVersion    = "|1.2"
	legalBasis    = kbvSD + "KBV_EX_FOR_Legal_basis"
	// pruefnummerSystem names the KBV Prüfnummer of the practice software.
	pruefnummerSystem = "https://fhir.kbv.de/NamingSystem/KBV_NS_FOR_Pruefnummer"
)

// profiles maps the VoS resource profiles (name without base) onto the ERP and FOR profiles.
var profiles = map[string]string{
	"KBV_PR_VoS_Patient":                kbvSD + "KBV_PR_FOR_Patient" + forVersion,
	"KBV_PR_VoS_Coverage":               kbvSD + "KBV_PR_FOR_Coverage" + forVersion,
	"KBV_PR_VoS_Practitioner":           kbvSD + "KBV_PR_FOR_Practitioner" + forVersion,
	"KBV_PR_VoS_Organization":           kbvSD + "KBV_PR_FOR_Organization" + forVersion,
	"KBV_PR_VoS_Medication_PZN":         kbvSD + "KBV_PR_ERP_Medication_PZN" + erpVersion,
	"KBV_PR_VoS_Medication_Compounding": kbvSD + "KBV_PR_ERP_Medication_Compounding" + erpVersion,
	"KBV_PR_VoS_Medication_FreeText":    kbvSD + "KBV_PR_ERP_Medication_FreeText" + erpVersion,
	"KBV_PR_VoS_Medication_Ingredient":  kbvSD + "KBV_PR_ERP_Medication_Ingredient" + erpVersion,
	"KBV_PR_VoS_Prescription":           kbvSD + "KBV_PR_ERP_Prescription" + erpVersion,
}

// extensions maps VoS extensions onto their ERP counterparts: the URL, and the code system of
// their valueCoding.
var extensions = map[string][2]string{
	kbvSD + "KBV_EX_VoS_Medication_Category": {kbvSD + "KBV_EX_ERP_Medication_Category", "https://fhir.kbv.de/CodeSystem/KBV_CS_ERP_Medication_Category"},
}

// Is tells whether b is a VOS Speicherbundle: a Bundle whose meta.profile names
// KBV_PR_VoS_Bundle_VoS_PVS, in any version.
func Is(b *etree.Element) bool {
	if b == nil || b.Tag != "Bundle" {
		return false
	}
	for _, p := range b.FindElements("meta/profile") {
		if canonical(fhir.Value(p)) == BundleProfile {
			return true
		}
	}
	return false
}

// canonical is a canonical URL without its version.
func canonical(s string) string {
	u, _, _ := strings.Cut(s, "|")
	return u
}

// Result is a converted Speicherbundle.
type Result struct {
	Bundle   *etree.Element // the KBV_PR_ERP_Bundle
	Warnings fhir.Issues    // what was left out, at locations in the posted bundle
	Errors   fhir.Issues    // what the ERP bundle needs and the posted one lacks
	origin   origins
	// attachment is the location of the base64 attachment the ERP bundle was decoded from ("":
	// the bundle's elements are the posted bundle's).
	attachment string
}

// Locate names a location of the converted bundle by the element of the posted bundle it came
// from (see package doc).
func (r *Result) Locate(is fhir.Issues) fhir.Issues {
	out := make(fhir.Issues, 0, len(is))
	for _, i := range is {
		if r.attachment != "" {
			if i.Expression != "" {
				i.Diagnostics = "in the unsigned e-prescription bundle at " + i.Expression + ": " + i.Diagnostics
			}
			i.Expression = r.attachment
		} else {
			i.Expression = r.origin.locate(r.Bundle, i.Expression)
		}
		out = append(out, i)
	}
	return out
}

// Outcome merges what the converted bundle's validation found with the conversion's own
// findings, all at locations of the posted bundle: the warnings, and the error that refuses it
// (nil when neither the validation nor the conversion found one). An error without FHIR issues
// (an internal one) is returned as it is.
func (r *Result) Outcome(warnings fhir.Issues, err error) (fhir.Issues, error) {
	warnings = append(append(fhir.Issues(nil), r.Warnings...), r.Locate(warnings)...)
	var errs fhir.Issues
	if err != nil {
		is, _ := fhir.Explain(err)
		if len(is) == 0 {
			return warnings, err
		}
		errs = r.Locate(is)
	}
	errs = append(append(fhir.Issues(nil), r.Errors...), errs...)
	if len(errs) > 0 {
		return warnings, fhir.Reject(errs.Unique())
	}
	return warnings, nil
}

// posted is one entry of the posted bundle.
type posted struct {
	at      string // Bundle.entry[i].resource
	entry   *etree.Element
	res     *etree.Element
	profile string // its VoS profile name (KBV_PR_VoS_Patient), "" for another
}

// converter holds one conversion's state.
type converter struct {
	b       *etree.Element
	entries []posted
	byKey   map[string]int // fullUrl and Type/id → entry index
	r       *Result
	// legalBasis is the prescription's KBV_EX_FOR_Legal_basis, which moves to the Composition
	legalBasis *etree.Element
}

// Convert turns a Speicherbundle into the e-prescription bundle red validates and signs. It fails
// (with every finding, at locations of b) when b holds no prescription, or more than one.
func Convert(b *etree.Element) (*Result, error) {
	c := &converter{b: b, byKey: map[string]int{}, r: &Result{origin: origins{}}}
	for i, e := range b.SelectElements("entry") {
		res := fhir.ResourceOf(e.SelectElement("resource"))
		p := posted{at: fmt.Sprintf("Bundle.entry[%d].resource", i), entry: e, res: res}
		if res != nil {
			for _, mp := range res.FindElements("meta/profile") {
				if name := strings.TrimPrefix(canonical(fhir.Value(mp)), kbvSD); strings.HasPrefix(name, "KBV_PR_VoS_") {
					p.profile = name
				}
			}
			if u := fhir.ChildValue(e, "fullUrl"); u != "" {
				c.byKey[u] = i
			}
			if id := idOf(e, res); id != "" {
				c.byKey[res.Tag+"/"+id] = i
			}
		}
		c.entries = append(c.entries, p)
	}
	if done, err := c.carried(); done || err != nil {
		return c.r, err
	}
	return c.r, c.mapped()
}

// idOf is a resource's id, or else the UUID of its urn:uuid fullUrl (a transaction's POST
// entries may leave the id out).
func idOf(entry, res *etree.Element) string {
	if id := fhir.ChildValue(res, "id"); id != "" {
		return id
	}
	if u, ok := strings.CutPrefix(fhir.ChildValue(entry, "fullUrl"), "urn:uuid:"); ok {
		return u
	}
	return ""
}

// carried takes the unsigned e-prescription bundle the Speicherbundle carries, if it carries
// one; done reports that it did.
func (c *converter) carried() (done bool, err error) {
	type found struct {
		at         string
		bundle     *etree.Element
		attachment bool
	}
	var all []found
	for _, p := range c.entries {
		switch {
		case p.res == nil:
		case p.res.Tag == "Bundle" && isERPBundle(p.res):
			all = append(all, found{p.at, p.res, false})
		case p.res.Tag == "DocumentReference":
			for k, content := range p.res.SelectElements("content") {
				a := content.SelectElement("attachment")
				if !strings.Contains(strings.ToLower(fhir.ChildValue(a, "contentType")), "xml") || fhir.ChildValue(a, "data") == "" {
					continue
				}
				at := fmt.Sprintf("%s.content[%d].attachment.data", p.at, k)
				raw, err := base64.StdEncoding.DecodeString(fhir.ChildValue(a, "data"))
				if err != nil {
					c.r.Errors = append(c.r.Errors, issue(fhir.CodeValue, at, "the attachment is not base64"))
					continue
				}
				inner, err := fhir.Parse(raw, fhir.DefaultLimits)
				if err != nil || !isERPBundle(inner) {
					continue // another XML document: not a prescription
				}
				all = append(all, found{at, inner, true})
			}
		}
	}
	if len(c.r.Errors) > 0 && len(all) == 0 {
		return true, fhir.Reject(c.r.Errors)
	}
	switch len(all) {
	case 0:
		return false, nil
	case 1:
	default:
		var where []string
		for _, f := range all {
			where = append(where, f.at)
		}
		return true, fhir.Fail(fhir.CodeNotSupported, all[1].at, "the VOS bundle carries %d unsigned e-prescription bundles (%s): send one prescription per request", len(all), strings.Join(where, ", "))
	}
	f := all[0]
	if f.attachment {
		c.r.Bundle = f.bundle
		c.r.attachment = f.at
	} else {
		c.r.Bundle = c.r.origin.copyFrom(f.bundle)
	}
	c.r.Bundle.CreateAttr("xmlns", fhir.Namespace)
	for _, p := range c.entries {
		if p.res != nil && p.res.Tag == "MedicationRequest" {
			c.r.Warnings = append(c.r.Warnings, warning(p.at, "a second prescription beside the carried e-prescription bundle is not taken over: send it in a request of its own"))
		}
	}
	return true, nil
}

// isERPBundle tells whether b is a KBV_PR_ERP_Bundle.
func isERPBundle(b *etree.Element) bool {
	if b == nil || b.Tag != "Bundle" {
		return false
	}
	for _, p := range b.FindElements("meta/profile") {
		if canonical(fhir.Value(p)) == erpBundle {
			return true
		}
	}
	return false
}

// resolve finds the entry a reference names (its fullUrl, or Type/id), -1 when none.
func (c *converter) resolve(ref string) int {
	if i, ok := c.byKey[ref]; ok {
		return i
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 2 {
		if i, ok := c.byKey[parts[n-2]+"/"+parts[n-1]]; ok {
			return i
		}
	}
	return -1
}

// mapped maps the Speicherbundle's VoS resources onto the ERP and FOR profiles.
func (c *converter) mapped() error {
	var rxs []int
	for i, p := range c.entries {
		if p.res != nil && p.res.Tag == "MedicationRequest" {
			rxs = append(rxs, i)
		}
	}
	switch len(rxs) {
	case 0:
		return fhir.Fail(fhir.CodeRequired, "Bundle.entry", "the VOS bundle has no prescription (KBV_PR_VoS_Prescription) and carries no unsigned e-prescription bundle (a signed one, PKCS#7, is not sent again)")
	case 1:
	default:
		return fhir.Fail(fhir.CodeNotSupported, c.entries[rxs[1]].at, "the VOS bundle has %d prescriptions: send one prescription per request", len(rxs))
	}
	rxAt := rxs[0]
	rx := c.entries[rxAt]
	var comp *posted
	for i, p := range c.entries {
		if p.res != nil && p.res.Tag == "Composition" {
			comp = &c.entries[i]
			break
		}
	}

	// what the prescription takes along: its medication, patient, coverage, practitioner and
	// organization (a PractitionerRole is followed to the latter two)
	take := map[int]bool{rxAt: true}
	var practitioner, organization, role *etree.Element // references, in the posted bundle
	follow := func(ref *etree.Element) int {
		i := c.resolve(fhir.ChildValue(ref, "reference"))
		if i >= 0 {
			take[i] = true
		}
		return i
	}
	follow(rx.res.SelectElement("medicationReference"))
	follow(rx.res.SelectElement("subject"))
	for _, ins := range rx.res.SelectElements("insurance") {
		follow(ins)
	}
	if req := rx.res.SelectElement("requester"); req != nil {
		if i := c.resolve(fhir.ChildValue(req, "reference")); i >= 0 && c.entries[i].res.Tag == "PractitionerRole" {
			role = c.entries[i].res
			practitioner, organization = role.SelectElement("practitioner"), role.SelectElement("organization")
		} else {
			practitioner = req
		}
	}
	if organization == nil && comp != nil {
		organization = comp.res.SelectElement("custodian")
	}
	if organization == nil {
		for i, p := range c.entries {
			if p.res != nil && p.res.Tag == "Organization" {
				if organization != nil {
					organization = nil // several: none is the practice for sure
					break
				}
				organization = etree.NewElement("custodian")
				organization.CreateElement("reference").CreateAttr("value", "Organization/"+idOf(p.entry, p.res))
				take[i] = true
			}
		}
	}
	follow(practitioner)
	follow(organization)

	// the practice software's KBV Prüfnummer (KBV_PR_VoS_Device_PVS), which the Composition
	// names as its author Device
	var pruefnummer *etree.Element
	for _, p := range c.entries {
		if p.res != nil && p.res.Tag == "Device" && pruefnummer == nil {
			for _, id := range p.res.SelectElements("identifier") {
				if fhir.ChildValue(id, "system") == pruefnummerSystem {
					pruefnummer = id
				}
			}
		}
	}

	// the warnings for what stays behind
	for i, p := range c.entries {
		switch {
		case p.res == nil || take[i] || (comp != nil && p.res == comp.res):
		case p.res.Tag == "Device" && pruefnummer != nil && pruefnummer.Parent() == p.res:
		case p.res.Tag == "PractitionerRole":
			if p.res.FindElement("organization/identifier") != nil {
				c.r.Warnings = append(c.r.Warnings, warning(p.at+".organization.identifier", "the ASV team number has no place in red's mapping onto the e-prescription: left out"))
			}
		case slices.Contains([]string{"Patient", "Coverage", "Practitioner", "Organization", "Medication"}, p.res.Tag):
			c.r.Warnings = append(c.r.Warnings, warning(p.at, "the prescription does not refer to this "+p.res.Tag+": left out"))
		default:
			c.r.Warnings = append(c.r.Warnings, warning(p.at, "a "+p.res.Tag+" is no part of an e-prescription: left out"))
		}
	}

	o := c.r.origin
	out := etree.NewElement("Bundle")
	out.CreateAttr("xmlns", fhir.Namespace)
	o[out] = c.b
	c.r.Bundle = out
	rxID := idOf(rx.entry, rx.res)
	id := c.b.SelectElement("id")
	if id != nil {
		o.copyInto(out, id)
	} else {
		fhir.SetValue(out.CreateElement("id"), rxID)
	}
	fhir.SetValue(out.CreateElement("meta").CreateElement("profile"), erpBundle+erpVersion)
	fhir.SetValue(out.CreateElement("type"), "document")
	date := c.b.SelectElement("timestamp")
	if comp != nil && comp.res.SelectElement("date") != nil {
		date = comp.res.SelectElement("date")
	}
	if ts := c.b.SelectElement("timestamp"); ts != nil {
		o.copyInto(out, ts)
	} else if date != nil {
		o[out.CreateElement("timestamp")] = date
		fhir.SetValue(out.SelectElement("timestamp"), fhir.Value(date))
	} else {
		c.r.Errors = append(c.r.Errors, issue(fhir.CodeRequired, "Bundle.timestamp", "the e-prescription bundle needs its time: the VOS bundle has neither Bundle.timestamp nor Composition.date"))
	}

	compEntry := out.CreateElement("entry")
	var taken []*etree.Element // the converted resources
	for i, p := range c.entries {
		if !take[i] {
			continue
		}
		e := out.CreateElement("entry")
		o[e] = p.entry
		if fu := p.entry.SelectElement("fullUrl"); fu != nil {
			o.copyInto(e, fu)
		} else {
			c.r.Errors = append(c.r.Errors, issue(fhir.CodeRequired, strings.TrimSuffix(p.at, ".resource")+".fullUrl", "the entry has no fullUrl"))
		}
		holder := e.CreateElement("resource")
		o[holder] = p.entry.SelectElement("resource")
		res := o.copyFrom(p.res)
		holder.AddChild(res)
		c.convert(res, p)
		taken = append(taken, res)
	}

	// the Composition, the document's head
	cr := etree.NewElement("Composition")
	compID, fullURL := "", ""
	if comp != nil {
		o[cr] = comp.res
		compID, fullURL = idOf(comp.entry, comp.res), fhir.ChildValue(comp.entry, "fullUrl")
		o[compEntry] = comp.entry
	}
	if compID == "" {
		compID = nameUUID("Composition " + rxID)
	}
	if fullURL == "" {
		if base, ok := strings.CutSuffix(fhir.ChildValue(rx.entry, "fullUrl"), "MedicationRequest/"+rxID); ok && base != "" {
			fullURL = base + "Composition/" + compID
		} else {
			fullURL = "urn:uuid:" + nameUUID("Composition "+rxID)
		}
	}
	fhir.SetValue(compEntry.CreateElement("fullUrl"), fullURL)
	compEntry.CreateElement("resource").AddChild(cr)
	fhir.SetValue(cr.CreateElement("id"), compID)
	fhir.SetValue(cr.CreateElement("meta").CreateElement("profile"), kbvSD+"KBV_PR_ERP_Composition"+erpVersion)
	basis := c.legalBasis
	if comp != nil {
		for _, ext := range comp.res.SelectElements("extension") {
			if canonical(ext.SelectAttrValue("url", "")) == legalBasis {
				basis = o.copyFrom(ext)
			}
		}
	}
	if basis != nil {
		cr.AddChild(basis)
	}
	fhir.SetValue(cr.CreateElement("status"), "final")
	coding := cr.CreateElement("type").CreateElement("coding")
	fhir.SetValue(coding.CreateElement("system"), "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_KBV_FORMULAR_ART")
	fhir.SetValue(coding.CreateElement("code"), "e16A")
	if s := rx.res.SelectElement("subject"); s != nil {
		subject := cr.CreateElement("subject")
		o[subject] = s
		o[subject.CreateElement("reference")] = s.SelectElement("reference")
		fhir.SetValue(subject.SelectElement("reference"), c.relative(fhir.ChildValue(s, "reference")))
	}
	if date != nil {
		d := cr.CreateElement("date")
		o[d] = date
		fhir.SetValue(d, fhir.Value(date))
	} else {
		c.r.Errors = append(c.r.Errors, issue(fhir.CodeRequired, "Bundle.timestamp", "the e-prescription's Composition needs its date: the VOS bundle has neither Composition.date nor Bundle.timestamp"))
	}
	if practitioner != nil { // else the validation reports the prescription's missing requester
		author := cr.CreateElement("author")
		o[author] = practitioner
		ref := author.CreateElement("reference")
		o[ref] = practitioner.SelectElement("reference")
		fhir.SetValue(ref, c.relative(fhir.ChildValue(practitioner, "reference")))
		fhir.SetValue(author.CreateElement("type"), "Practitioner")
	}
	if pruefnummer != nil { // else the validation reports the missing Prüfnummer
		author := cr.CreateElement("author")
		o[author] = pruefnummer.Parent()
		fhir.SetValue(author.CreateElement("type"), "Device")
		id := o.copyInto(author, pruefnummer)
		for _, k := range id.ChildElements() {
			if k.Tag != "system" && k.Tag != "value" {
				id.RemoveChild(k)
			}
		}
	}
	fhir.SetValue(cr.CreateElement("title"), "elektronische Arzneimittelverordnung")
	if organization == nil {
		c.r.Errors = append(c.r.Errors, issue(fhir.CodeRequired, "Bundle.entry", "the e-prescription's custodian is the practice: the VOS bundle names no Organization for it (the prescriber's PractitionerRole.organization, the Composition's custodian, or its one Organization)"))
	} else {
		custodian := cr.CreateElement("custodian")
		o[custodian] = organization
		ref := custodian.CreateElement("reference")
		o[ref] = organization.SelectElement("reference")
		fhir.SetValue(ref, c.relative(fhir.ChildValue(organization, "reference")))
	}
	section := func(code, ref string) {
		s := cr.CreateElement("section")
		sc := s.CreateElement("code").CreateElement("coding")
		fhir.SetValue(sc.CreateElement("system"), "https://fhir.kbv.de/CodeSystem/KBV_CS_ERP_Section_Type")
		fhir.SetValue(sc.CreateElement("code"), code)
		fhir.SetValue(s.CreateElement("entry").CreateElement("reference"), ref)
	}
	section("Prescription", "MedicationRequest/"+rxID)
	for _, ins := range rx.res.SelectElements("insurance") {
		section("Coverage", c.relative(fhir.ChildValue(ins, "reference")))
	}
	if role != nil {
		c.requester(taken, practitioner)
	}
	return nil
}

// copyInto appends a copy of src to parent, remembering its origins.
func (o origins) copyInto(parent, src *etree.Element) *etree.Element {
	c := o.copyFrom(src)
	parent.AddChild(c)
	return c
}

// relative is a reference to an entry of the posted bundle as the e-prescription writes it,
// Type/id; a reference to no entry stays as it is.
func (c *converter) relative(ref string) string {
	if i := c.resolve(ref); i >= 0 {
		p := c.entries[i]
		return p.res.Tag + "/" + idOf(p.entry, p.res)
	}
	return ref
}

// requester makes the converted prescription's requester its practitioner (the VoS one names
// the PractitionerRole).
func (c *converter) requester(taken []*etree.Element, practitioner *etree.Element) {
	for _, res := range taken {
		if res.Tag == "MedicationRequest" {
			if ref := res.FindElement("requester/reference"); ref != nil {
				fhir.SetValue(ref, c.relative(fhir.ChildValue(practitioner, "reference")))
			}
		}
	}
}

// convert turns a copied VoS resource into its ERP or FOR counterpart: its id (from a
// urn:uuid fullUrl when it has none), profile, extensions and references.
func (c *converter) convert(res *etree.Element, p posted) {
	o := c.r.origin
	if res.SelectElement("id") == nil {
		id := etree.NewElement("id")
		fhir.SetValue(id, idOf(p.entry, p.res))
		res.InsertChildAt(0, id)
	}
	meta := res.SelectElement("meta")
	if meta == nil {
		meta = etree.NewElement("meta")
		res.InsertChildAt(1, meta)
	}
	named := false
	for _, mp := range meta.SelectElements("profile") {
		name := strings.TrimPrefix(canonical(fhir.Value(mp)), kbvSD)
		if !strings.HasPrefix(name, "KBV_PR_VoS_") {
			named = named || strings.HasPrefix(name, "KBV_PR_ERP_") || strings.HasPrefix(name, "KBV_PR_FOR_")
			continue
		}
		if to, ok := profiles[name]; ok {
			fhir.SetValue(mp, to)
			named = true
			continue
		}
		c.r.Errors = append(c.r.Errors, issue(fhir.CodeNotSupported, pathOf(o[mp], nil), name+" has no counterpart in the e-prescription"))
		named = true
	}
	if !named {
		to, ok := byType[res.Tag]
		if !ok {
			c.r.Errors = append(c.r.Errors, issue(fhir.CodeRequired, p.at+".meta.profile", "name the "+res.Tag+"'s VoS profile (KBV_PR_VoS_Medication_PZN, _Compounding, _FreeText or _Ingredient): red cannot tell which e-prescription profile it maps onto"))
		} else {
			fhir.SetValue(meta.CreateElement("profile"), to)
		}
	}
	for _, ext := range res.FindElements(".//extension") {
		if !within(ext, res) {
			continue // inside an extension removed before
		}
		url := canonical(ext.SelectAttrValue("url", ""))
		switch to, ok := extensions[url]; {
		case ok:
			ext.CreateAttr("url", to[0])
			if sys := ext.FindElement("valueCoding/system"); sys != nil {
				fhir.SetValue(sys, to[1])
			}
		case url == legalBasis && res.Tag == "MedicationRequest" && ext.Parent() == res:
			if c.legalBasis == nil {
				c.legalBasis = ext
			}
			res.RemoveChild(ext)
		case strings.HasPrefix(url, kbvSD+"KBV_EX_VoS_"):
			c.r.Warnings = append(c.r.Warnings, warning(pathOf(o[ext], nil), strings.TrimPrefix(url, kbvSD)+" has no place in the e-prescription: left out"))
			ext.Parent().RemoveChild(ext)
		}
	}
	for _, ref := range res.FindElements(".//reference") {
		fhir.SetValue(ref, c.relative(fhir.Value(ref)))
	}
}

// byType are the profiles of a resource that names none, where its type leaves no doubt.
var byType = map[string]string{
	"Patient":           profiles["KBV_PR_VoS_Patient"],
	"Coverage":          profiles["KBV_PR_VoS_Coverage"],
	"Practitioner":      profiles["KBV_PR_VoS_Practitioner"],
	"Organization":      profiles["KBV_PR_VoS_Organization"],
	"MedicationRequest": profiles["KBV_PR_VoS_Prescription"],
}

func issue(code fhir.IssueCode, at, msg string) fhir.Issue {
	return fhir.Issue{Severity: fhir.SeverityError, Code: code, Expression: at, Diagnostics: msg}
}

func warning(at, msg string) fhir.Issue {
	return fhir.Issue{Severity: fhir.SeverityWarning, Code: fhir.CodeInformational, Expression: at, Diagnostics: msg}
}

// nameUUID is a name-based UUID (version 5) of name, for a fullUrl the posted bundle has none for.
func nameUUID(name string) string {
	h := sha1.Sum([]byte("red vos " + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// within tells whether e is (still) below root.
func within(e, root *etree.Element) bool {
	for ; e != nil; e = e.Parent() {
		if e == root {
			return true
		}
	}
	return false
}
