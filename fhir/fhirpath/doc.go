// Package fhirpath evaluates the FHIRPath invariants of FHIR StructureDefinitions
// (constraint.expression) on resources kept as etree trees of FHIR XML.
//
// It implements the subset that the KBV profiles red validates against (AWS 1.2.0,
// eRezept 1.3, FOR 1.2, de.basisprofil 0.9) and the common FHIR R4 invariants use; the
// expressions are listed in testdata/expressions.txt. An expression is compiled once
// with [Compile] and evaluated against any element, a resource or an element inside
// one, with [Expr.Eval] (a collection) or [Expr.Bool] (an invariant's verdict).
// Anything outside the subset (a function, operator, variable, type name or literal it
// does not know) fails to compile with an error naming it; it never evaluates to true
// by accident.
//
// # The tree as FHIRPath sees it
//
//   - A path step selects child elements by name. A name that has no such child
//     matches a choice element: value matches valueQuantity, effective matches
//     effectiveDateTime; such a node knows its type from the suffix.
//   - The XML attributes id (of any element) and url (of an extension) are children
//     too, as strings. The value attribute is the primitive value of its element: a
//     path that reaches <status value="final"/> gives a primitive that compares,
//     matches and converts as "final". An element without a value attribute has
//     none (hasValue() is false, toString() empty).
//   - A resource inside a container (Bundle.entry.resource, contained,
//     Bundle.entry.response.outcome) is reached through the container's name:
//     entry.resource is the Patient element, of type Patient.
//   - Narrative (text.div, XHTML) is one opaque node: it exists, nothing inside it
//     is navigated, descendants() does not enter it.
//   - Without the schema the type of an ordinary element is unknown: is/as/ofType
//     recognise resources, choice elements and System values; for other elements
//     they are false/empty. Comparisons of two primitives from the tree infer the
//     kind from the text: equal texts are equal; canonical decimals compare as
//     numbers, FHIR dates and dateTimes as dates (partial precision as FHIRPath
//     says), anything else as strings. A literal on one side decides the kind of
//     the other.
//
// # Semantics
//
// Collections, empty propagation and three-valued and/or/xor/implies follow
// FHIRPath N1 (the version FHIR R4 uses); and, or and implies short-circuit when
// the left operand decides. matches() is a partial match (unanchored, dot matches
// newline), as the FHIRPath specification defines it (matchesFull() is the anchored
// form). Older HL7 Java engines matched the whole string; that differs for the
// unanchored patterns of de.basisprofil 0.9 (ik-1, lanr-1, zanr-2, chrg-1,
// ags-extension-1) and FOR's -for-laengeASVnummer: a ten-digit LANR passes lanr-1 here.
// The eRezept profiles anchor with ^ and $ where they mean a full match. String literals
// keep FHIRPath escapes (\\ \' \" \` \/ \f \n \r \t \uXXXX); an unknown escape is an error.
//
// [Expr.Bool] reads an empty result as "holds" (the invariant does not apply);
// [EmptyResult](false) judges it a violation instead, as the HL7 Java validator does. It
// matters where an or has an empty side: -erp-referenzAufAusstellendePerson-1 compares
// the author with a SupplyRequest's requester that a prescription does not have.
//
// Variables: $this, $index, %resource (the resource that contains the context
// element), %rootResource (the containing resource of a contained one, else
// %resource), %context (the element evaluated against). today() and now() read
// the clock given by [WithClock] (default time.Now).
//
// resolve() finds a reference's target only in the tree at hand: a contained
// resource ('#id'), or a Bundle entry whose fullUrl equals the reference or whose
// resource has the referenced type and id. Anything outside gives an empty
// collection, so an invariant that needs it holds vacuously where it depends on
// the target's presence; red checks that references resolve elsewhere.
//
// memberOf() and the other terminology functions are not supported: they need a
// terminology server, and an expression that uses them fails to compile.
package fhirpath
