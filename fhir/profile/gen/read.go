package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/beevik/etree"
)

// pkgInfo is a FHIR package (a folder with a package.json): the definitions in it resolve the
// canonical references they do not version within the package and its dependencies.
type pkgInfo struct {
	name, version string
	deps          map[string]string // package name (lower case) → version
	closure       map[*pkgInfo]bool // itself and the dependencies read, transitively
}

func (p *pkgInfo) String() string { return p.name + "|" + p.version }

// origin is where a definition was read: its package (nil for a folder that is none) and its
// place in the reading order (the folders in the order given, each in file name order).
type origin struct {
	pkg *pkgInfo
	seq int
}

// readDir reads the definitions below dir. A folder with a package.json (a FHIR package, its
// resources usually in JSON) is read as that package, its examples aside; elsewhere only XML is
// read, as published by the KBV in its validation packages.
func (g *gen) readDir(dir string) error {
	pkgs := map[string]*pkgInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "package.json" {
			return err
		}
		pi, err := readPackageJSON(p)
		if err != nil {
			return err
		}
		if pi != nil {
			pkgs[filepath.Dir(p)] = pi
			g.pkgs = append(g.pkgs, pi)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		pkg := packageOf(pkgs, p)
		if d.IsDir() {
			if pkg != nil && (d.Name() == "examples" || d.Name() == "example") {
				return filepath.SkipDir
			}
			return nil
		}
		var root *etree.Element
		switch ext := strings.ToLower(filepath.Ext(p)); {
		case ext == ".xml":
			doc := etree.NewDocument()
			if err := doc.ReadFromFile(p); err != nil {
				g.warnings = append(g.warnings, fmt.Sprintf("%s: %v", p, err))
				return nil
			}
			root = doc.Root()
		case ext == ".json" && pkg != nil && d.Name() != "package.json":
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if root, err = readJSON(data); err != nil {
				g.warnings = append(g.warnings, fmt.Sprintf("%s: %v", p, err))
				return nil
			}
		}
		if root != nil {
			g.seq++
			g.readResource(root, p, origin{pkg: pkg, seq: g.seq})
		}
		return nil
	})
}

// packageOf is the package whose folder holds path (the innermost), nil when none does.
func packageOf(pkgs map[string]*pkgInfo, path string) *pkgInfo {
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if p := pkgs[d]; p != nil {
			return p
		}
		if next := filepath.Dir(d); next == d {
			return nil
		}
	}
}

// readPackageJSON reads a FHIR package manifest; nil when it names no package and version.
func readPackageJSON(path string) (*pkgInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m struct {
		Name         string            `json:"name"`
		Version      string            `json:"version"`
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Name == "" || m.Version == "" {
		return nil, nil
	}
	pi := &pkgInfo{name: m.Name, version: m.Version, deps: map[string]string{}}
	for n, v := range m.Dependencies {
		pi.deps[strings.ToLower(n)] = v
	}
	return pi, nil
}

// linkPackages works out each package's closure over the packages read.
func (g *gen) linkPackages() {
	byID := map[string]*pkgInfo{}
	for _, p := range g.pkgs {
		byID[strings.ToLower(p.name)+"|"+p.version] = p
	}
	for _, p := range g.pkgs {
		p.closure = map[*pkgInfo]bool{}
		var add func(q *pkgInfo)
		add = func(q *pkgInfo) {
			if p.closure[q] {
				return
			}
			p.closure[q] = true
			for n, v := range q.deps {
				if d := byID[n+"|"+v]; d != nil {
					add(d)
				}
			}
		}
		add(p)
	}
}

// readJSON turns a FHIR resource in JSON into the element tree of its XML form, as far as the
// generator reads it: each property a child element in the order written, a primitive's value
// its value attribute, an array repeated elements, the id of an element and the url of an
// extension attributes, a resource inside another wrapped in an element of its property's name.
// The narrative's XHTML is left out.
func readJSON(data []byte) (*etree.Element, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	root := etree.NewElement("")
	if err := jsonObject(dec, root, false); err != nil {
		return nil, err
	}
	if root.Tag == "" {
		return nil, nil // no resource
	}
	return root, nil
}

// jsonObject reads the members of an object (its opening brace read) into el; extension tells
// that el is an extension (its url an attribute).
func jsonObject(dec *json.Decoder, el *etree.Element, extension bool) error {
	resource := false
	var primExt []*etree.Element // the _name members: id and extensions of primitives
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if key == "resourceType" {
			v, err := dec.Token()
			if err != nil {
				return err
			}
			el.Tag, _ = v.(string)
			resource = true
			continue
		}
		attr := (key == "id" && !resource) || (key == "url" && extension)
		if err := jsonValue(dec, el, key, attr, &primExt); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return err
	}
	for _, x := range primExt {
		mergePrimitive(el, x)
	}
	return nil
}

// jsonValue reads the value of member key of el.
func jsonValue(dec *json.Decoder, el *etree.Element, key string, attr bool, primExt *[]*etree.Element) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := jsonItem(dec, el, key, i, primExt); err != nil {
				return err
			}
		}
		_, err := dec.Token() // closing bracket
		return err
	case json.Delim('{'):
		return jsonChild(dec, el, key, -1, primExt)
	}
	s, ok := primitive(t)
	if !ok {
		return nil // null
	}
	switch {
	case attr:
		el.CreateAttr(key, s)
	case key == "div":
		el.CreateElement("div")
	default:
		el.CreateElement(key).CreateAttr("value", s)
	}
	return nil
}

// jsonItem reads item i of the array member key of el.
func jsonItem(dec *json.Decoder, el *etree.Element, key string, i int, primExt *[]*etree.Element) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t == json.Delim('{') {
		return jsonChild(dec, el, key, i, primExt)
	}
	if s, ok := primitive(t); ok {
		el.CreateElement(key).CreateAttr("value", s)
	}
	return nil // a null (in a _name array it keeps the places of the items that follow)
}

// jsonChild reads an object (its brace read) as the child key of el: a complex value, a resource
// (wrapped in an element named key), or the id and extensions of the primitive named key without
// its underscore (index i of an array, or -1), merged when el is complete.
func jsonChild(dec *json.Decoder, el *etree.Element, key string, i int, primExt *[]*etree.Element) error {
	if name, ok := strings.CutPrefix(key, "_"); ok {
		x := etree.NewElement(name)
		if err := jsonObject(dec, x, false); err != nil {
			return err
		}
		x.CreateAttr("_index", fmt.Sprint(i))
		*primExt = append(*primExt, x)
		return nil
	}
	c := etree.NewElement(key)
	if err := jsonObject(dec, c, key == "extension" || key == "modifierExtension"); err != nil {
		return err
	}
	if c.Tag != key { // a resource: its tag is its type
		el.CreateElement(key).AddChild(c)
		return nil
	}
	el.AddChild(c)
	return nil
}

// mergePrimitive adds the id and extensions of a primitive (read from its _name member) to the
// primitive's element, creating it when the primitive has no value.
func mergePrimitive(el, x *etree.Element) {
	idx := -1
	fmt.Sscan(x.SelectAttrValue("_index", "-1"), &idx)
	x.RemoveAttr("_index")
	var target *etree.Element
	n := 0
	for _, c := range el.SelectElements(x.Tag) {
		if idx < 0 || n == idx {
			target = c
			break
		}
		n++
	}
	if target == nil {
		target = el.CreateElement(x.Tag)
	}
	for _, a := range x.Attr {
		target.CreateAttr(a.Key, a.Value)
	}
	for _, c := range x.ChildElements() {
		target.AddChild(c)
	}
}

// primitive is a JSON scalar as FHIR writes it in XML; false for null and delimiters.
func primitive(t json.Token) (string, bool) {
	switch v := t.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}
