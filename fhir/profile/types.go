package profile

// The table types below are what the generator (fhir/profile/gen) emits from the published
// StructureDefinitions, ValueSets and CodeSystems. They carry only what validation needs: no
// documentation, no mappings, no mustSupport.

// Tables is every profile and value set the generator read.
//
// A canonical may be there in several versions (KBV Basis 1.1.3 for AWS, 1.7.0 for the
// e-prescription): Profiles and ValueSets are ordered by URL and, for one URL, by the order the
// definitions were read, the first being what an unversioned canonical means outside a package.
// References in the tables (type and target profiles, bound value sets) name the version they
// resolve to wherever more than one version of the canonical is there; they are resolved in the
// scope of the profile's package (see Scope).
type Tables struct {
	Source    string          // where the definitions came from (package names and versions)
	Profiles  []*StructureDef // profiles of resources and data types, and extensions
	ValueSets []*ValueSet     // value sets with their expansion (when it could be computed)
	Packages  []Package       // the FHIR packages read, with their dependencies
}

// Package is a FHIR package the tables were read from: its definitions resolve the canonicals
// they do not version (e.g. an extension's url in an instance) within Closure.
type Package struct {
	ID      string   // name|version
	Closure []string // the package and the packages it depends on that were read, transitively
}

// StructureDef is one profile or extension definition with its differential merged over the
// differentials of its ancestors that were present (FHIR core itself is not part of the tables).
type StructureDef struct {
	URL       string
	Version   string
	Name      string
	Kind      string   // resource, complex-type, primitive-type, logical
	Type      string   // the constrained type: Patient, Extension, Identifier, …
	Base      string   // baseDefinition as written (canonical, maybe with |version)
	Chain     []string // ancestor profiles merged in, nearest first (only those present; |version where several are)
	Contexts  []Context
	Elements  []*ElementDef // in differential order, ancestors' elements first
	CoreBased bool          // the chain ends in a FHIR core definition (its cardinalities are not in the tables)
	Package   string        // the FHIR package (name|version) it was read from; "" for a folder that is none
}

// Context is where an extension may be used.
type Context struct {
	Type       string // element, fhirpath, extension
	Expression string
}

// ElementDef is one element of a profile: the constraints the differentials state for it.
// Min is -1 when no ancestor present states it; Max is "" when unstated, "*" for unbounded.
type ElementDef struct {
	ID          string // Coverage.identifier:KVK-Versichertennummer.type.coding.system
	Path        string // Coverage.identifier.type.coding.system
	SliceName   string
	Min         int
	Max         string
	Fixed       *Value
	Pattern     *Value
	MaxLength   int
	Binding     *Binding
	Slicing     *Slicing
	Types       []TypeRef
	Constraints []Constraint
	Match       *SliceMatch // for a slice: how an instance is recognised as belonging to it
}

// Value is a fixed[x] or pattern[x] value: its FHIR type and its content as a small tree.
type Value struct {
	Type string // Uri, Code, CodeableConcept, …
	Node Node
}

// Node is a value tree: a primitive value (Value) and/or child elements.
type Node struct {
	Name     string // element name (empty for the root)
	Value    string // the value attribute, when present
	Children []Node
}

// Binding of a coded element to a value set.
type Binding struct {
	Strength string // required, extensible, preferred, example
	ValueSet string // canonical, possibly with |version
}

// Slicing of a repeating element.
type Slicing struct {
	Discriminators []Discriminator
	Rules          string // open, closed, openAtEnd
	Ordered        bool
	Implicit       bool // not stated: the default extension slicing by url
}

// Discriminator of a slicing.
type Discriminator struct {
	Type string // value, pattern, type, profile, exists
	Path string
}

// SliceMatch is, per discriminator of the slicing, what the slice expects. Unresolved says why the
// generator could not work out a discriminator value (the slice is then never matched and its
// cardinality not checked).
type SliceMatch struct {
	Discriminators []DiscValue
	Unresolved     string
}

// DiscValue is what one discriminator expects of a slice's instances.
type DiscValue struct {
	Type     string   // as in Discriminator
	Path     string   // as in Discriminator
	Values   []string // value/pattern: primitive values at Path (any one present matches)
	Patterns []Node   // value/pattern: complex values at Path (an element there containing any one matches)
	Types    []string // type: allowed type codes
	Profiles []string // profile: allowed profiles
	Exists   bool     // exists: whether the path must be present
}

// TypeRef is one allowed type of an element.
type TypeRef struct {
	Code          string
	Profiles      []string
	TargetProfile []string
}

// Constraint is an invariant with its FHIRPath expression.
type Constraint struct {
	Key        string
	Severity   string // error, warning
	Human      string
	Expression string
}

// ValueSet with its expansion over the code systems present. Expanded is false when the value set
// includes codes of a code system that was not present (or not complete), e.g. ICD-10-GM: its
// codes are then not checked.
type ValueSet struct {
	URL         string
	Version     string
	Name        string
	Package     string // as StructureDef.Package
	Expanded    bool
	NotExpanded string // why not
	Codes       []Code
}

// Code is one system+code pair of an expansion.
type Code struct {
	System string
	Code   string
}

// Scope tells which definitions the references of a profile read from package pkg may resolve to
// (see PickVersion): those of the package and the packages it depends on; for a profile read
// outside packages (pkg ""), those read outside packages. So a package does not meet definitions
// it does not depend on (the e-prescription does not meet the older KBV key tables of AWS), nor
// does AWS meet the packages read after it.
func (t *Tables) Scope(pkg string) func(defPkg string) bool {
	if pkg == "" {
		return func(defPkg string) bool { return defPkg == "" }
	}
	in := map[string]bool{}
	for _, p := range t.Packages {
		if p.ID == pkg {
			for _, id := range p.Closure {
				in[id] = true
			}
		}
	}
	return func(defPkg string) bool { return in[defPkg] }
}
