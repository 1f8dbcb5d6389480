package fhirpath

import (
	"os"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// listed is one expression of testdata/expressions.txt with the lines naming its uses:
// "<profile>|<version> <key> @<element id> [<source>]".
type listed struct {
	expr string
	uses []string
}

func readExpressions(t testing.TB) []listed {
	t.Helper()
	data, err := os.ReadFile("testdata/expressions.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []listed
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '\t':
			out[len(out)-1].uses = append(out[len(out)-1].uses, line[1:])
		default:
			out = append(out, listed{expr: line})
		}
	}
	return out
}

// skip would list expressions of testdata/expressions.txt that are not supported, with
// the reason. None is: every listed invariant compiles.
var skip = map[string]string{}

func TestExpressionsCompile(t *testing.T) {
	list := readExpressions(t)
	uses := 0
	for _, l := range list {
		uses += len(l.uses)
		if len(l.uses) == 0 {
			t.Errorf("%s: no use listed", l.expr)
		}
		if why, ok := skip[l.expr]; ok {
			t.Logf("skipped (%s): %s", why, l.expr)
			continue
		}
		if _, err := Compile(l.expr); err != nil {
			t.Error(err)
		}
	}
	for expr := range skip {
		if !containsExpr(list, expr) {
			t.Errorf("skip lists %q, which testdata/expressions.txt does not", expr)
		}
	}
	if len(list) < 150 || uses < 170 {
		t.Errorf("only %d expressions (%d uses) read", len(list), uses)
	}
	t.Logf("%d expressions, %d uses, %d skipped", len(list), uses, len(skip))
}

func containsExpr(list []listed, expr string) bool {
	for _, l := range list {
		if l.expr == expr {
			return true
		}
	}
	return false
}

// TestExpressionsHoldOnExamples evaluates every invariant that applies to the example
// bundles (the FHIR core ones and those of the profiles the resources claim) wherever its
// element occurs in them: each must hold. Invariants on slices and data types are left to
// TestExpressionsPassFail.
func TestExpressionsHoldOnExamples(t *testing.T) {
	list := readExpressions(t)
	for _, file := range []string{"testdata/erp-bundle.xml", "testdata/aws-bundle.xml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		root := parseXML(t, string(data))
		evaluated := map[string]bool{}
		runs := 0
		for _, l := range list {
			e := MustCompile(l.expr)
			for _, use := range l.uses {
				profile, key, element := splitUse(use)
				if key == "dom-6" { // severity warning: KBV's eRezept forbids narrative
					continue
				}
				for _, el := range contexts(root, profile, element) {
					runs++
					evaluated[profile+" "+key] = true
					ok, err := e.Bool(el)
					if err != nil || !ok {
						t.Errorf("%s: %s %s on <%s> of %s: %v, %v", file, profile, key, el.Tag, resourceOf(el).Tag, ok, err)
					}
				}
			}
		}
		t.Logf("%s: %d evaluations of %d invariants", file, runs, len(evaluated))
		if len(evaluated) < 20 {
			t.Errorf("%s: only %d invariants applied", file, len(evaluated))
		}
	}
}

func splitUse(use string) (profile, key, element string) {
	f := strings.Fields(use)
	return f[0], f[1], strings.TrimPrefix(f[2], "@")
}

// contexts finds the elements an invariant of profile on element (an ElementDefinition
// id) applies to in the tree under root. Slices and data-type profiles give none.
func contexts(root *etree.Element, profile, element string) []*etree.Element {
	if strings.Contains(element, ":") {
		return nil
	}
	steps := strings.Split(element, ".")
	var els []*etree.Element
	walk(root, func(el *etree.Element) {
		if applies(el, profile, steps[0]) {
			els = append(els, el)
		}
	})
	for _, step := range steps[1:] {
		var next []*etree.Element
		for _, el := range els {
			for _, it := range navigate(child(el, ""), strings.TrimSuffix(step, "[x]"), nil) {
				if it.kind == kNode {
					next = append(next, it.el)
				}
			}
		}
		els = next
	}
	return els
}

func walk(el *etree.Element, f func(*etree.Element)) {
	if isXHTML(el) {
		return
	}
	f(el)
	for _, c := range el.ChildElements() {
		walk(c, f)
	}
}

// applies tells whether an invariant of profile on type typ (the first step of its element
// id) applies to el.
func applies(el *etree.Element, profile, typ string) bool {
	if profile == "FHIR-R4-4.0.1" {
		switch typ {
		case "Element":
			return !isResource(el) && child(el, "").el == el
		case "Extension":
			return el.Tag == "extension" || el.Tag == "modifierExtension"
		case "DomainResource":
			return isA(el.Tag, "DomainResource")
		}
		return isResource(el) && el.Tag == typ
	}
	if !isResource(el) || el.Tag != typ {
		return false
	}
	name, _, _ := strings.Cut(profile, "|")
	for _, p := range el.FindElements("meta/profile") {
		if url, _, _ := strings.Cut(p.SelectAttrValue("value", ""), "|"); url == "https://fhir.kbv.de/StructureDefinition/"+name {
			return true
		}
	}
	return false
}
