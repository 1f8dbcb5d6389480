package printout_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/datamatrix"
	"rsc.io/pdf"

	"github.com/redclone/red/internal/printout"
)

// rx are made-up prescriptions with valid PrescriptionIDs (check digits) and random access codes.
var rx = []printout.Prescription{
	{PrescriptionID: "160.000.165.685.331.97", AccessCode: "e2b60e5414773316d7fbcc9d04b7713ce90c98a421d586a2d797578c3a9e836c", Medication: "Ibuprofen 400 mg – Tabletten"},
	{PrescriptionID: "160.000.165.685.332.94", AccessCode: "58a3b49bfd3672d31d16095d84de7a57b260f24ce4d4f562d57ac1a5d673030f", Medication: "Amoxicillin 1000 mg Filmtabletten"},
	{PrescriptionID: "160.000.165.685.333.91", AccessCode: "a3c0e3388362562a2a850df2ad5679221c8acbe7d24b8fc26f24a024a3055169", Medication: "Salbutamol Dosieraerosol 100 µg"},
	{PrescriptionID: "160.000.165.685.334.88", AccessCode: "c1f936bc30cdd934dcae6f5c2a4db45fad439bd85fd83779470f2af7bfc21492", Medication: "Metformin 500 mg"},
	{PrescriptionID: "200.000.000.000.042.42", AccessCode: "1F7AC0949D6F81B3FDADFBE16AAB849D2794B634D08DDC1E079C69F673289CDB", Medication: "Pantoprazol 20 mg magensaftresistente Tabletten"},
	{PrescriptionID: "160.000.165.685.336.82", AccessCode: "c2f260290ac1bb441722a184ee12eafe61f3ecb4ea5b5c894981b4b4fcbed361", Medication: "Rezeptur: Hydrocortisonacetat 1 % in Basiscreme DAC, " + strings.Repeat("sehr lange Beschreibung der Zubereitung, ", 12) + "Ende"},
	{PrescriptionID: "160.000.165.685.337.79", AccessCode: "b4d533e75d7f367dc3d08b86b49150cb8ab1937e30f4219544b2ea76e5b9ac18", Medication: "Öl-Ölbad für Kinder, Größe Ü"},
}

func TestDataMatrix(t *testing.T) {
	for _, tc := range []struct {
		ps   []printout.Prescription
		want string
	}{
		{rx[:1], `{"urls":["Task/160.000.165.685.331.97/$accept?ac=e2b60e5414773316d7fbcc9d04b7713ce90c98a421d586a2d797578c3a9e836c"]}`},
		{rx[:2], `{"urls":["Task/160.000.165.685.331.97/$accept?ac=e2b60e5414773316d7fbcc9d04b7713ce90c98a421d586a2d797578c3a9e836c",` +
			`"Task/160.000.165.685.332.94/$accept?ac=58a3b49bfd3672d31d16095d84de7a57b260f24ce4d4f562d57ac1a5d673030f"]}`},
		{rx[2:5], `{"urls":["Task/160.000.165.685.333.91/$accept?ac=a3c0e3388362562a2a850df2ad5679221c8acbe7d24b8fc26f24a024a3055169",` +
			`"Task/160.000.165.685.334.88/$accept?ac=c1f936bc30cdd934dcae6f5c2a4db45fad439bd85fd83779470f2af7bfc21492",` +
			`"Task/200.000.000.000.042.42/$accept?ac=1F7AC0949D6F81B3FDADFBE16AAB849D2794B634D08DDC1E079C69F673289CDB"]}`},
	} {
		got, err := printout.DataMatrix(tc.ps)
		if err != nil {
			t.Fatalf("%d prescriptions: %v", len(tc.ps), err)
		}
		if got != tc.want {
			t.Errorf("%d prescriptions:\n got %s\nwant %s", len(tc.ps), got, tc.want)
		}
	}
}

func TestDataMatrixErrors(t *testing.T) {
	bad := func(f func(*printout.Prescription)) []printout.Prescription {
		p := rx[1]
		f(&p)
		return []printout.Prescription{rx[0], p}
	}
	for name, ps := range map[string][]printout.Prescription{
		"none":                             nil,
		"four: more than one code carries": rx[:4],
		"check digits":                     bad(func(p *printout.Prescription) { p.PrescriptionID = "160.000.165.685.332.95" }),
		"id format":                        bad(func(p *printout.Prescription) { p.PrescriptionID = "160000165685332.94" }),
		"access code too short":            bad(func(p *printout.Prescription) { p.AccessCode = p.AccessCode[1:] }),
		"access code not hex":              bad(func(p *printout.Prescription) { p.AccessCode = "g" + p.AccessCode[1:] }),
		"quote in access code":             bad(func(p *printout.Prescription) { p.AccessCode = p.AccessCode[:62] + `"]` }),
	} {
		got, err := printout.DataMatrix(ps)
		if err == nil {
			t.Errorf("%s: no error, content %s", name, got)
			continue
		}
		for _, p := range ps {
			if strings.Contains(err.Error(), p.AccessCode) || strings.Contains(err.Error(), p.PrescriptionID) {
				t.Errorf("%s: the error repeats a value: %v", name, err)
			}
		}
	}
}

var sheet = printout.Sheet{
	Patient:      "Jürgen Müller",
	BirthDate:    "1961-03-12",
	Practice:     "Praxis Dr. Groß & Kollegen, Łódź-Straße 5, Köln",
	Practitioner: "Dr. med. Änne Weiß",
	Issued:       time.Date(2026, 6, 5, 9, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
}

// TestPDF opens the printout with a PDF reader (rsc.io/pdf): it checks the page count, the text
// each page shows, and reads every Data Matrix code back from the page's drawing: the code's
// filled rectangles, as the reader reports them, are put on a bitmap that gozxing decodes.
func TestPDF(t *testing.T) {
	// Access codes of hexadecimal letters only give the largest codes: only digits pair up.
	letters := slices.Clone(rx[:3])
	for i := range letters {
		letters[i].AccessCode = strings.Repeat("fedcbaFEDCBA"[i:i+6], 11)[:64]
	}
	for _, tc := range []struct {
		name  string
		ps    []printout.Prescription
		pages int
	}{
		{"1", rx[:1], 1}, {"3", rx[:3], 1}, {"4", rx[:4], 2}, {"7", rx[:7], 3}, {"largest codes", letters, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sheet
			s.Prescriptions = tc.ps
			b, err := printout.PDF(s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.HasSuffix(bytes.TrimSpace(b), []byte("%%EOF")) {
				t.Fatalf("not a PDF file: %.20q … %q", b, b[max(0, len(b)-20):])
			}
			r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.NumPage(); got != tc.pages {
				t.Fatalf("%d pages, want %d", got, tc.pages)
			}
			for i := range tc.pages {
				checkPage(t, r, i+1, tc.pages, tc.ps[i*3:min(len(tc.ps), i*3+3)])
			}
		})
	}
}

func checkPage(t *testing.T, r *pdf.Reader, n, of int, ps []printout.Prescription) {
	t.Helper()
	p := r.Page(n)
	content, err := pageContent(p)
	if err != nil {
		t.Fatalf("page %d: the reader fails: %v", n, err)
	}

	// The page size is inherited from the page tree.
	media := p.V
	for media.Key("MediaBox").IsNull() && !media.Key("Parent").IsNull() {
		media = media.Key("Parent")
	}
	w, h := media.Key("MediaBox").Index(2).Float64(), media.Key("MediaBox").Index(3).Float64()
	if math.Abs(w-595.28) > 0.5 || math.Abs(h-841.89) > 0.5 {
		t.Errorf("page %d: %.2f × %.2f points, not A4", n, w, h)
	}

	// The codes: the collective one and one for each prescription.
	all, err := printout.DataMatrix(ps)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{all}
	for i := range ps {
		one, err := printout.DataMatrix(ps[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, one)
	}
	var got []string
	for _, c := range clusters(content.Rect) {
		text, err := decode(c)
		if err != nil {
			t.Errorf("page %d: the code at %v does not decode: %v", n, c.box, err)
			continue
		}
		// A module is 1/50 inch (1.44 points), and a code's top left corner is on that grid.
		onGrid := func(v float64) bool { return math.Abs(v/1.44-math.Round(v/1.44)) < 0.02 }
		if math.Abs(c.module-1.44) > 0.01 || !onGrid(c.box.x0) || !onGrid(h-c.box.y1) {
			t.Errorf("page %d: the code at %v has modules of %.3f points or is off their grid", n, c.box, c.module)
		}
		got = append(got, text)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("page %d: codes\n got %q\nwant %q", n, got, want)
	}

	// The text, as the reader decodes it through the font's encoding (it leaves out spaces). It
	// knows no glyph widths of the standard fonts, so only where each string starts is checked.
	var sb strings.Builder
	for _, g := range content.Text {
		sb.WriteString(g.S)
		if g.X < 0 || g.X > w || g.Y < 0 || g.Y > h {
			t.Errorf("page %d: %q at %.1f,%.1f is off the page", n, g.S, g.X, g.Y)
		}
	}
	text := sb.String()
	expect := []string{
		"Ausdruck zur Einlösung Ihres E-Rezeptes", "Jürgen Müller", "12.03.1961", "05.06.2026",
		"Praxis Dr. Groß & Kollegen, .ód.-Straße 5, Köln", // Ł and ź are not in cp1252: dots
		"Dr. med. Änne Weiß", fmt.Sprintf("Seite %d von %d", n, of),
	}
	for _, p := range ps {
		m := p.Medication
		if len(m) > 120 {
			m = m[:100] // the long one is cut after some lines, see below
		}
		expect = append(expect, m, "Rezept-ID: "+p.PrescriptionID)
	}
	for _, e := range expect {
		e = strings.ReplaceAll(e, " ", "")
		if !strings.Contains(text, e) {
			t.Errorf("page %d: the text lacks %q", n, e)
		}
	}
	if strings.Contains(text, "Ende") {
		t.Errorf("page %d: the long medication name is not cut", n)
	}
	for _, p := range ps {
		if strings.Contains(text, p.AccessCode) {
			t.Errorf("page %d: an access code is printed as text", n)
		}
	}
}

// pageContent runs the reader's content interpreter, which panics on what it cannot read.
func pageContent(p pdf.Page) (c pdf.Content, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return p.Content(), nil
}

type box struct{ x0, y0, x1, y1 float64 }

func (a box) near(b box, d float64) bool {
	return a.x0-d <= b.x1 && b.x0-d <= a.x1 && a.y0-d <= b.y1 && b.y0-d <= a.y1
}

func (a box) union(b box) box {
	return box{min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1)}
}

// code is one Data Matrix symbol found on a page: its filled rectangles in PDF points.
type code struct {
	box    box
	rects  []box
	module float64
}

// clusters groups a page's filled rectangles into symbols: rectangles less than about a module
// apart belong together, and so do groups whose bounding boxes meet (a symbol's solid L-shaped
// finder spans its whole box). The codes on the printout are far apart.
func clusters(rs []pdf.Rect) []code {
	boxes := make([]box, len(rs))
	module := math.Inf(1)
	for i, r := range rs {
		boxes[i] = box{min(r.Min.X, r.Max.X), min(r.Min.Y, r.Max.Y), max(r.Min.X, r.Max.X), max(r.Min.Y, r.Max.Y)}
		module = min(module, boxes[i].y1-boxes[i].y0)
	}
	d := 1.2 * module
	parent := make([]int, len(boxes))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range boxes {
		for j := i + 1; j < len(boxes); j++ {
			if boxes[i].near(boxes[j], d) {
				parent[find(i)] = find(j)
			}
		}
	}
	groups := map[int]*code{}
	var cs []*code
	for i, b := range boxes {
		root := find(i)
		c := groups[root]
		if c == nil {
			c = &code{box: b}
			groups[root] = c
			cs = append(cs, c)
		}
		c.box = c.box.union(b)
		c.rects = append(c.rects, b)
	}
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(cs) && !merged; i++ {
			for j := i + 1; j < len(cs); j++ {
				if cs[i].box.near(cs[j].box, d) {
					cs[i].box = cs[i].box.union(cs[j].box)
					cs[i].rects = append(cs[i].rects, cs[j].rects...)
					cs = slices.Delete(cs, j, j+1)
					merged = true
					break
				}
			}
		}
	}
	out := make([]code, len(cs))
	for i, c := range cs {
		c.module = module
		out[i] = *c
	}
	return out
}

// decode puts c on a bitmap, four pixels a module with a quiet zone of four modules, and reads
// it with gozxing's Data Matrix reader.
func decode(c code) (string, error) {
	const px, quiet = 4, 4
	cell := func(v float64) int { return int(math.Round(v / c.module)) }
	cols, rows := cell(c.box.x1-c.box.x0), cell(c.box.y1-c.box.y0)
	img := image.NewGray(image.Rect(0, 0, (cols+2*quiet)*px, (rows+2*quiet)*px))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for _, r := range c.rects {
		// PDF y grows upwards; image rows grow downwards.
		c0, c1 := cell(r.x0-c.box.x0), cell(r.x1-c.box.x0)
		r0, r1 := cell(c.box.y1-r.y1), cell(c.box.y1-r.y0)
		for y := (r0 + quiet) * px; y < (r1+quiet)*px; y++ {
			for x := (c0 + quiet) * px; x < (c1+quiet)*px; x++ {
				img.SetGray(x, y, color.Gray{})
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := datamatrix.NewDataMatrixReader().Decode(bmp, nil)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

func TestPDFSame(t *testing.T) {
	s := sheet
	s.Prescriptions = rx[:2]
	a, err := printout.PDF(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := printout.PDF(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same sheet gives different PDFs")
	}
}

func TestPDFErrors(t *testing.T) {
	noMed := rx[1]
	noMed.Medication = " \t"
	badID := rx[1]
	badID.PrescriptionID = "160.000.165.685.332.95"
	for name, ps := range map[string][]printout.Prescription{
		"none":             nil,
		"no medication":    {rx[0], noMed},
		"bad id on page 2": {rx[0], rx[2], rx[3], badID},
	} {
		s := sheet
		s.Prescriptions = ps
		b, err := printout.PDF(s)
		if err == nil {
			t.Errorf("%s: no error, %d bytes", name, len(b))
			continue
		}
		if want := fmt.Sprintf("prescription %d:", len(ps)); len(ps) > 0 && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: the error %q does not say %q", name, err, want)
		}
		if strings.Contains(err.Error(), "Müller") || strings.Contains(err.Error(), badID.PrescriptionID) {
			t.Errorf("%s: the error repeats a value: %v", name, err)
		}
	}
}
