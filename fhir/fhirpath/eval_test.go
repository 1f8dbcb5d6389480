package fhirpath

import (
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/redclone/red/fhir"
)

const patientXML = `<Patient xmlns="http://hl7.org/fhir">
  <id value="p1"/>
  <meta><profile value="https://fhir.kbv.de/StructureDefinition/KBV_PR_AW_Patient|1.2.0"/></meta>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Lena <b>Sommer</b></p></div></text>
  <extension url="http://example.org/a"><valueString value="A"/></extension>
  <extension url="http://example.org/b"><valueCoding><system value="http://s"/><code value="X"/></valueCoding></extension>
  <extension url="http://example.org/flag"><valueBoolean value="false"/></extension>
  <identifier><type><coding><code value="KVZ10"/></coding></type><value value="M123456785"/></identifier>
  <active value="true"/>
  <name><use value="official"/><family value="Sommer"/><given value="Lena"/><given value="Marie"/></name>
  <gender value="female"/>
  <birthDate value="1980-05-17"/>
  <address id="a1"><type value="both"/><line value="Hauptstr. 1"><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"><valueString value="Hauptstr."/></extension><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"><valueString value="1"/></extension></line><city value="Berlin"/><postalCode value="10115"/><country value="D"/></address>
  <contact><name><text value="Ruth"/></name></contact>
</Patient>`

const observationXML = `<Observation xmlns="http://hl7.org/fhir">
  <id value="o1"/>
  <contained><Patient><id value="c1"/><gender value="male"/></Patient></contained>
  <status value="final"/>
  <code><coding><system value="http://loinc.org"/><code value="8480-6"/></coding></code>
  <subject><reference value="#c1"/></subject>
  <effectiveDateTime value="2024-03-01T10:00:00+01:00"/>
  <valueQuantity><value value="120.5"/><unit value="mmHg"/></valueQuantity>
  <component><code><coding><system value="http://loinc.org"/><code value="8462-4"/></coding></code><valueInteger value="80"/></component>
</Observation>`

const bundleXML = `<Bundle xmlns="http://hl7.org/fhir">
  <id value="b1"/>
  <type value="document"/>
  <entry><fullUrl value="urn:uuid:0001"/><resource><Composition><id value="c"/><author><reference value="Practitioner/pr1"/></author><author><reference value="urn:uuid:0003"/></author><author><reference value="Practitioner/elsewhere"/></author></Composition></resource></entry>
  <entry><fullUrl value="https://example.org/fhir/Practitioner/pr1"/><resource><Practitioner><id value="pr1"/><qualification><code><coding><code value="00"/></coding></code></qualification></Practitioner></resource></entry>
  <entry><fullUrl value="urn:uuid:0003"/><resource><Organization><id value="org"/><name value="Praxis"/></Organization></resource></entry>
  <entry><fullUrl value="urn:uuid:0004"/><resource><Patient><id value="p2"/></Patient></resource></entry>
</Bundle>`

func parseXML(t testing.TB, doc string) *etree.Element {
	t.Helper()
	el, err := fhir.Parse([]byte(doc), fhir.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// at finds the context element: "" is the root, else an etree path from it.
func at(t testing.TB, root *etree.Element, path string) *etree.Element {
	t.Helper()
	if path == "" {
		return root
	}
	el := root.FindElement(path)
	if el == nil {
		t.Fatalf("no element at %s", path)
	}
	return el
}

// show renders a collection for comparison: its items joined by ", ", "{}" when empty.
func show(c Collection) string {
	if len(c) == 0 {
		return "{}"
	}
	parts := make([]string, len(c))
	for i, it := range c {
		parts[i] = it.String()
	}
	return strings.Join(parts, ", ")
}

var clock = func() time.Time { return time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC) }

type evalCase struct {
	expr, want string // want "error" expects an evaluation error
	doc, at    string // the instance (default patientXML) and the context in it
}

func runEval(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, c := range cases {
		doc := c.doc
		if doc == "" {
			doc = patientXML
		}
		root := parseXML(t, doc)
		e, err := Compile(c.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.expr, err)
			continue
		}
		got, err := e.Eval(at(t, root, c.at), WithClock(clock))
		switch {
		case c.want == "error" && err == nil:
			t.Errorf("%s: got %s, want an error", c.expr, show(got))
		case c.want != "error" && err != nil:
			t.Errorf("%s: %v", c.expr, err)
		case c.want != "error" && show(got) != c.want:
			t.Errorf("%s = %s, want %s", c.expr, show(got), c.want)
		}
	}
}

func TestLiterals(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `'a\'b'`, want: `a'b`},
		{expr: `'[1-4][qQ]\\d{4}'`, want: `[1-4][qQ]\d{4}`},
		{expr: `'\u00e4\t.'`, want: "ä\t."},
		{expr: "`name`.given.first()", want: "Lena"},
		{expr: `42`, want: "42"},
		{expr: `1.50`, want: "1.50"},
		{expr: `true`, want: "true"},
		{expr: `@2020-01-01`, want: "2020-01-01"},
		{expr: `@2020-01-01T10:00:00Z`, want: "2020-01-01T10:00:00Z"},
		{expr: `@T10:00`, want: "T10:00"},
		{expr: `@2020-01-01.toString()`, want: "2020-01-01"},
	})
}

func TestOperators(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `1 = 1`, want: "true"},
		{expr: `1 = 2`, want: "false"},
		{expr: `1 != 2`, want: "true"},
		{expr: `1 = 1.0`, want: "true"},
		{expr: `'a' = 'a'`, want: "true"},
		{expr: `'a' = 'A'`, want: "false"},
		{expr: `'a' ~ 'A'`, want: "true"},
		{expr: `'a  b' ~ 'A b'`, want: "true"},
		{expr: `'a' !~ 'b'`, want: "true"},
		{expr: `1 < 2`, want: "true"},
		{expr: `2 <= 2`, want: "true"},
		{expr: `2.5 > 2`, want: "true"},
		{expr: `3 >= 4`, want: "false"},
		{expr: `'abc' < 'abd'`, want: "true"},
		{expr: `1 < 'a'`, want: "error"},
		{expr: `1 | 2 | 1`, want: "1, 2"},
		{expr: `2 in (1 | 2)`, want: "true"},
		{expr: `(1 | 2) contains 3`, want: "false"},
		{expr: `(1 | 2) in 1`, want: "error"},
		{expr: `'a' & name.nothing & 'b'`, want: "ab"},
		{expr: `'#' + id`, want: "#p1"},
		{expr: `'#' + address.id`, want: "#a1"},
		{expr: `1 + 2`, want: "3"},
		{expr: `1.5 + 1`, want: "2.5"},
		{expr: `5 - 7`, want: "-2"},
		{expr: `-1 < 0`, want: "true"},
		{expr: `-(2.5)`, want: "-2.5"},
		{expr: `1 + 2 = 3 and 4 > 3`, want: "true"},
		{expr: `name.given = 'Lena' | 'Marie'`, want: "true"},
		{expr: `name.given = 'Marie' | 'Lena'`, want: "false"},
		{expr: `name.given ~ 'marie' | 'lena'`, want: "true"},
	})
}

// TestLogic covers FHIRPath's three-valued and, or, xor, implies and not(); name.nothing
// is an empty collection.
func TestLogic(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `true and true`, want: "true"},
		{expr: `true and name.nothing`, want: "{}"},
		{expr: `false and name.nothing`, want: "false"},
		{expr: `name.nothing and false`, want: "false"},
		{expr: `name.nothing and true`, want: "{}"},
		{expr: `true or name.nothing`, want: "true"},
		{expr: `false or name.nothing`, want: "{}"},
		{expr: `name.nothing or true`, want: "true"},
		{expr: `false or false`, want: "false"},
		{expr: `true xor false`, want: "true"},
		{expr: `true xor true`, want: "false"},
		{expr: `true xor name.nothing`, want: "{}"},
		{expr: `true implies false`, want: "false"},
		{expr: `true implies name.nothing`, want: "{}"},
		{expr: `false implies name.nothing`, want: "true"},
		{expr: `name.nothing implies true`, want: "true"},
		{expr: `name.nothing implies false`, want: "{}"},
		{expr: `true.not()`, want: "false"},
		{expr: `name.nothing.not()`, want: "{}"},
		{expr: `false and (1 < 'a')`, want: "false"}, // short-circuit: the error is never reached
		{expr: `name.given and true`, want: "error"},
		{expr: `gender and true`, want: "true"}, // a single non-boolean item is true
		{expr: `active and true`, want: "true"},
		{expr: `extension('http://example.org/flag').value or false`, want: "false"},
		{expr: `true or false and false`, want: "true"},
		{expr: `false implies true or false`, want: "true"},
	})
}

func TestEmpty(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `name.nothing = 'a'`, want: "{}"},
		{expr: `name.nothing != 'a'`, want: "{}"},
		{expr: `name.nothing < 1`, want: "{}"},
		{expr: `name.nothing.count()`, want: "0"},
		{expr: `name.nothing.empty()`, want: "true"},
		{expr: `name.nothing.exists()`, want: "false"},
		{expr: `name.nothing.startsWith('a')`, want: "{}"},
		{expr: `name.nothing.toString()`, want: "{}"},
		{expr: `name.nothing + 1`, want: "{}"},
		{expr: `name.nothing in (1 | 2)`, want: "{}"},
		{expr: `name.nothing.all(false)`, want: "true"},
		{expr: `name.nothing.first()`, want: "{}"},
		{expr: `name.nothing ~ name.nothing`, want: "true"},
	})
}

func TestPaths(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `name.given`, want: "Lena, Marie"},
		{expr: `Patient.name.family`, want: "Sommer"},
		{expr: `Observation.status`, want: "{}"},
		{expr: `id`, want: "p1"},
		{expr: `address.id`, want: "a1"},
		{expr: `extension.url`, want: "http://example.org/a, http://example.org/b, http://example.org/flag"},
		{expr: `name.given[1]`, want: "Marie"},
		{expr: `name.given[2]`, want: "{}"},
		{expr: `name`, want: "<name>"},
		{expr: `gender = 'female'`, want: "true"},
		{expr: `birthDate < @2000-01-01`, want: "true"},
		{expr: `active = true`, want: "true"},
		{expr: "text.`div`.exists()", want: "true"},
		{expr: "text.`div`.p", want: "{}"},
		{expr: `%resource.id`, want: "p1", at: "address"},
		{expr: `%context`, want: "<address>", at: "address"},
		{expr: `%rootResource.id`, want: "p1", at: "address"},
		{expr: `city`, want: "Berlin", at: "address"},
		// choice elements
		{doc: observationXML, expr: `value.value`, want: "120.5"},
		{doc: observationXML, expr: `value.unit`, want: "mmHg"},
		{doc: observationXML, expr: `value is Quantity`, want: "true"},
		{doc: observationXML, expr: `value is string`, want: "false"},
		{doc: observationXML, expr: `value.is(FHIR.Quantity)`, want: "true"},
		{doc: observationXML, expr: `(value as Quantity).value > 100`, want: "true"},
		{doc: observationXML, expr: `value.ofType(Quantity).unit`, want: "mmHg"},
		{doc: observationXML, expr: `value.as(Coding).code`, want: "{}"},
		{doc: observationXML, expr: `effective is dateTime`, want: "true"},
		{doc: observationXML, expr: `effective > @2024-03-01T08:00:00Z`, want: "true"},
		{doc: observationXML, expr: `effective < @2024-03-01T09:30:00Z`, want: "true"},
		{doc: observationXML, expr: `effectiveDateTime.exists()`, want: "true"},
		{doc: observationXML, expr: `component.value = 80`, want: "true"},
		{doc: observationXML, expr: `component.value is integer`, want: "true"},
		{doc: observationXML, expr: `component.value + 1`, want: "81"},
		// the resource inside a container
		{doc: observationXML, expr: `contained.gender`, want: "male"},
		{doc: observationXML, expr: `contained is Patient`, want: "true"},
		{doc: observationXML, expr: `%resource.id`, want: "c1", at: "contained/Patient/gender"},
		{doc: observationXML, expr: `%rootResource.id`, want: "o1", at: "contained/Patient/gender"},
	})
}

func TestExtensions(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `extension('http://example.org/a').value`, want: "A"},
		{expr: `extension('http://example.org/a').value is string`, want: "true"},
		{expr: `extension('http://example.org/b').value.code`, want: "X"},
		{expr: `(extension('http://example.org/b').value as Coding).code = 'X'`, want: "true"},
		{expr: `extension('http://example.org/flag').value = false`, want: "true"},
		{expr: `(extension('http://example.org/flag').value as boolean) = false`, want: "true"},
		{expr: `extension('http://example.org/none').exists()`, want: "false"},
		{expr: `extension.where(url = 'http://example.org/a').exists()`, want: "true"},
		{expr: `extension('http://example.org/a').all(extension.exists() != value.exists())`, want: "true"},
		{expr: `address.line.extension('http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber').value`, want: "1"},
		{expr: `address.line.all($this.extension('http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName').empty() or $this.hasValue())`, want: "true"},
	})
}

func TestFunctions(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `name.given.first()`, want: "Lena"},
		{expr: `name.given.last()`, want: "Marie"},
		{expr: `name.given.count()`, want: "2"},
		{expr: `name.given.where($this.startsWith('M'))`, want: "Marie"},
		{expr: `name.given.where($index = 1)`, want: "Marie"},
		{expr: `name.given.select($this.length())`, want: "4, 5"},
		{expr: `name.given.all(length() > 3)`, want: "true"},
		{expr: `name.given.all(length() > 4)`, want: "false"},
		{expr: `name.given.exists($this = 'Marie')`, want: "true"},
		{expr: `identifier.type.coding.exists(code='KVZ10')`, want: "true"},
		{expr: `(name.given | name.given).count()`, want: "2"},
		{expr: `(name.given.first() | 'Lena' | 'X').distinct()`, want: "Lena, X"},
		{expr: `name.given.isDistinct()`, want: "true"},
		{expr: `(name.given | 'Lena').select($this & '').isDistinct()`, want: "true"},
		{expr: `('a' | 'b').select('x').isDistinct()`, want: "false"},
		{expr: `name.given.intersect('Marie' | 'X')`, want: "Marie"},
		{expr: `name.given.startsWith('L')`, want: "error"},
		{expr: `gender.startsWith('fe')`, want: "true"},
		{expr: `gender.endsWith('male')`, want: "true"},
		{expr: `gender.contains('ema')`, want: "true"},
		{expr: `gender.indexOf('male')`, want: "2"},
		{expr: `gender.indexOf('x')`, want: "-1"},
		{expr: `gender.indexOf('')`, want: "0"},
		{expr: `'Straße 1'.indexOf(' ')`, want: "6"},
		{expr: `gender.length()`, want: "6"},
		{expr: `gender.substring(2)`, want: "male"},
		{expr: `gender.substring(0, 2)`, want: "fe"},
		{expr: `gender.substring(10)`, want: "{}"},
		{expr: `birthDate.toString().substring(0,4)`, want: "1980"},
		{expr: `'12'.toInteger() + 1`, want: "13"},
		{expr: `gender.toInteger()`, want: "{}"},
		{expr: `identifier.value.matches('^M[0-9]{9}$')`, want: "true"},
		{expr: `identifier.value.matches('[0-9]{9}')`, want: "true"},
		{expr: `identifier.value.matches('^[0-9]{9}$')`, want: "false"},
		{expr: `identifier.value.matches('m' + '1')`, want: "false"},
		{expr: `identifier.value.matches('(' + '')`, want: "error"},
		{expr: `birthDate.hasValue()`, want: "true"},
		{expr: `name.hasValue()`, want: "false"},
		{expr: `name.given.hasValue()`, want: "false"},
		{expr: `address.children().count()`, want: "6"},
		{expr: `address.children().first()`, want: "a1"},
		{expr: `name.descendants().count()`, want: "4"},
		{expr: `descendants().where($this = 'Sommer').count()`, want: "1"},
		{expr: `iif(gender = 'female', 'w', 'm')`, want: "w"},
		{expr: `iif(gender = 'male', 'm')`, want: "{}"},
		{expr: `identifier.iif(empty(), 'none', 'some')`, want: "some"},
		{expr: `name.nothing.iif(empty(), 'none', 'some')`, want: "none"},
		{expr: `today()`, want: "2026-03-05"},
		{expr: `birthDate < today()`, want: "true"},
		{expr: `now() > @2026-03-05T09:59:59Z`, want: "true"},
		{expr: `now() < @2026-03-05`, want: "{}"},
	})
}

func TestDates(t *testing.T) {
	runEval(t, []evalCase{
		{expr: `@2020-01-01 < @2020-02`, want: "true"},
		{expr: `@2020 < @2020-01-01`, want: "{}"},
		{expr: `@2020-01 = @2020-01-01`, want: "{}"},
		{expr: `@2020-01-01 = @2020-01-01`, want: "true"},
		{expr: `@2020-01-01T10:00:00+01:00 = @2020-01-01T09:00:00Z`, want: "true"},
		{expr: `@2020-01-01T10:00:00.5Z > @2020-01-01T10:00:00Z`, want: "true"},
		{expr: `@T10:00 < @T11:00`, want: "true"},
		{expr: `@T10:00 < @2020-01-01`, want: "error"},
		{expr: `birthDate = @1980-05-17`, want: "true"},
		{expr: `birthDate ~ @1980-05`, want: "false"},
		{expr: `birthDate.toString() = '1980-05-17'`, want: "true"},
	})
}

func TestResolve(t *testing.T) {
	runEval(t, []evalCase{
		{doc: bundleXML, expr: `entry.resource.author.reference.resolve().id`, want: "pr1, org"},
		{doc: bundleXML, expr: `entry.resource.author.resolve().count()`, want: "2"},
		{doc: bundleXML, expr: `entry.resource.author.reference.first().resolve().qualification.code.coding.code`, want: "00"},
		{doc: bundleXML, expr: `author.reference.resolve().is(Organization)`, want: "error", at: "entry/resource/Composition"},
		{doc: bundleXML, expr: `author.reference.resolve().ofType(Organization).name`, want: "Praxis", at: "entry/resource/Composition"},
		{doc: observationXML, expr: `subject.resolve().gender`, want: "male"},
		{doc: observationXML, expr: `'Patient/x'.resolve()`, want: "{}"},
		{doc: bundleXML, expr: `entry.where(resource is Patient).count()`, want: "1"},
		{doc: bundleXML, expr: `entry.select(resource as Patient).id`, want: "p2"},
		{doc: bundleXML, expr: `entry.first().resource.is(Composition)`, want: "true"},
		{doc: bundleXML, expr: `entry.resource.ofType(DomainResource).count()`, want: "4"},
		{doc: bundleXML, expr: `entry.resource.is(Resource)`, want: "error"},
		{doc: bundleXML, expr: `is(Resource) and is(DomainResource).not()`, want: "true"},
	})
}

func TestTrace(t *testing.T) {
	var got []string
	e := MustCompile(`name.given.trace('g').count() + name.trace('n', family).count()`)
	c, err := e.Eval(parseXML(t, patientXML), WithTrace(func(name string, c Collection) {
		got = append(got, name+": "+show(c))
	}))
	if err != nil || show(c) != "3" {
		t.Fatalf("got %s, %v", show(c), err)
	}
	if strings.Join(got, "; ") != "g: Lena, Marie; n: Sommer" {
		t.Errorf("traced %q", got)
	}
}

func TestBool(t *testing.T) {
	root := parseXML(t, patientXML)
	for _, c := range []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{expr: `gender = 'female'`, want: true},
		{expr: `gender = 'male'`, want: false},
		{expr: `name.nothing = 'x'`, want: true}, // empty: the invariant does not apply
		{expr: `gender`, want: true},
		{expr: `name.given`, wantErr: true},
		{expr: `name.given.startsWith('L')`, wantErr: true},
	} {
		got, err := MustCompile(c.expr).Bool(root)
		if (err != nil) != c.wantErr || err == nil && got != c.want {
			t.Errorf("Bool(%s) = %v, %v", c.expr, got, err)
		}
	}
	if got, err := MustCompile(`name.nothing = 'x'`).Bool(root, EmptyResult(false)); got || err != nil {
		t.Errorf("Bool with EmptyResult(false) on an empty result = %v, %v", got, err)
	}
	if _, err := MustCompile(`true`).Eval(nil); err == nil {
		t.Error("Eval(nil) did not fail")
	}
}

func TestCompileErrors(t *testing.T) {
	for expr, want := range map[string]string{
		`code.memberOf('http://x')`:     "unsupported function memberOf(): it needs a terminology server",
		`foo()`:                         "unsupported function foo()",
		`1 * 2`:                         "unsupported operator *",
		`4 div 2`:                       "unsupported operator div",
		`value < 4 'mg'`:                "quantity literals are not supported",
		`value < 4 days`:                "quantity literals are not supported",
		`'\d'`:                          `unknown escape \d`,
		`'abc`:                          "unterminated '",
		`value is Foo`:                  "unknown type Foo",
		`value.ofType(System.Foo)`:      "unknown type System.Foo",
		`@2020-13-01`:                   "bad date/time literal",
		`$total`:                        "unsupported variable $total",
		`%ucum`:                         "unsupported variable %ucum",
		`%`:                             "without a name",
		`name given`:                    `unexpected "given"`,
		`(name`:                         `expected ")"`,
		`name.`:                         "expected a name after '.'",
		`exists(1, 2)`:                  "exists() takes 0 to 1 arguments, not 2",
		`where()`:                       "where() takes 1 argument(s), not 0",
		`count(1)`:                      "count() takes no arguments, not 1",
		`matches('(')`:                  "regular expression",
		`name.given ? 1`:                "unexpected character",
		`99999999999999999999`:          "out of range",
		`name.where(given = 'a') and )`: `unexpected ")"`,
	} {
		_, err := Compile(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%s): %v, want %q", expr, err, want)
		}
	}
}

// TestReuse evaluates one compiled expression many times, also at once: evaluation must not
// change the expression (a negated literal once did).
func TestReuse(t *testing.T) {
	e := MustCompile(`-(2.5) + 0 = -2.5 and -1 < 0 and identifier.value.matches('^M')`)
	root := parseXML(t, patientXML)
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 50 {
				got, err := e.Bool(root)
				ok = ok && got && err == nil
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("a repeated evaluation gave another answer")
		}
	}
}
