// Package printout makes the patient's printout of e-prescriptions (gematik's
// "Patientenausdruck"): the Data Matrix content that lets a pharmacy accept a prescription, and
// an A4 PDF that shows it as codes to scan.
//
// A Data Matrix code carries a JSON object {"urls":["Task/<PrescriptionID>/$accept?ac=<AccessCode>", …]}
// with one to [MaxPerCode] prescriptions. The PDF puts up to [MaxPerCode] prescriptions on each
// page: the page header names the patient, the birth date, the issue date, the practice and the
// practitioner, a collective code at the top right carries every prescription of the page, and
// each prescription has a row with its own code, the medication's name and its PrescriptionID.
//
// The PDF is built in memory with the standard Helvetica font in its cp1252 (WinAnsi) encoding,
// so German umlauts print as they are; characters outside cp1252 print as a dot. The codes are
// drawn as filled squares (vector graphics), not as images, so they stay sharp at every printer
// resolution. Errors name the prescription by its position and what is wrong, never the value.
package printout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/datamatrix"

	"github.com/redclone/red/fhir/ident"
)

// MaxPerCode is the largest number of prescriptions one Data Matrix code carries, and so the
// number of prescriptions on one page of the printout.
const MaxPerCode = 3

// Prescription is one e-prescription on the printout.
type Prescription struct {
	PrescriptionID string // the Task id, ddd.ddd.ddd.ddd.ddd.dd with its check digits
	AccessCode     string // the Task's secret, 64 hexadecimal digits
	Medication     string // the medication's name as the patient reads it
}

// Sheet is what the printout shows: the header of every page and the prescriptions.
type Sheet struct {
	Patient      string // the patient's name
	BirthDate    string // a FHIR date YYYY-MM-DD prints as DD.MM.YYYY; anything else as it is
	Practice     string // the issuing practice
	Practitioner string // the issuing practitioner
	// Issued prints as the calendar date in its own location (pass it in Europe/Berlin); it is
	// also the PDF's creation date, so equal sheets give equal bytes.
	Issued        time.Time
	Prescriptions []Prescription
}

// DataMatrix returns the content of the Data Matrix code for one to MaxPerCode prescriptions, in
// their order. It checks each PrescriptionID (with its check digits) and AccessCode; more than
// MaxPerCode prescriptions are an error, as one code must not carry them (PDF spreads them over
// pages instead).
func DataMatrix(ps []Prescription) (string, error) {
	if len(ps) == 0 {
		return "", errors.New("printout: a Data Matrix code needs at least one prescription")
	}
	if len(ps) > MaxPerCode {
		return "", fmt.Errorf("printout: a Data Matrix code carries at most %d prescriptions, not %d", MaxPerCode, len(ps))
	}
	content := struct {
		URLs []string `json:"urls"`
	}{URLs: make([]string, len(ps))}
	for i, p := range ps {
		if err := check(p); err != nil {
			return "", fmt.Errorf("printout: prescription %d: %w", i+1, err)
		}
		content.URLs[i] = "Task/" + p.PrescriptionID + "/$accept?ac=" + p.AccessCode
	}
	// Checked ids and access codes hold only digits, dots and hexadecimal letters: nothing that
	// JSON escapes.
	b, err := json.Marshal(content)
	if err != nil {
		return "", fmt.Errorf("printout: %w", err)
	}
	return string(b), nil
}

func check(p Prescription) error {
	if err := ident.PrescriptionID(p.PrescriptionID); err != nil {
		return err
	}
	if len(p.AccessCode) != 64 || strings.Trim(p.AccessCode, "0123456789abcdefABCDEF") != "" {
		return errors.New("the AccessCode is not 64 hexadecimal digits")
	}
	return nil
}

// Page layout in millimetres (A4 portrait).
const (
	pageW, pageH = 210.0, 297.0
	margin       = 18.0
	// module is the side of one Data Matrix module: 1/50 inch, so that at 150, 300 and 600 dpi
	// each module is a whole number of printer dots, and codes sit on that grid (see snap).
	module      = 25.4 / 50
	gap         = 6.0 // between a code and the text beside it
	maxMedLines = 4   // lines of a medication's name; a longer one is cut with "…"
)

// PDF returns the printout as a PDF document: one A4 page for each MaxPerCode prescriptions.
// Every prescription is checked as by DataMatrix and needs a medication name.
func PDF(s Sheet) ([]byte, error) {
	if len(s.Prescriptions) == 0 {
		return nil, errors.New("printout: the sheet has no prescription")
	}
	for i, p := range s.Prescriptions {
		if err := check(p); err != nil {
			return nil, fmt.Errorf("printout: prescription %d: %w", i+1, err)
		}
		if strings.TrimSpace(p.Medication) == "" {
			return nil, fmt.Errorf("printout: prescription %d: no medication name", i+1)
		}
	}
	var pages [][]Prescription
	for rest := s.Prescriptions; len(rest) > 0; {
		n := min(len(rest), MaxPerCode)
		pages = append(pages, rest[:n])
		rest = rest[n:]
	}

	f := fpdf.New("P", "mm", "A4", "")
	f.SetCompression(true)
	f.SetCatalogSort(true)
	f.SetCreationDate(s.Issued.UTC()) // fpdf writes no zone
	f.SetModificationDate(s.Issued.UTC())
	f.SetCreator("red", false)
	f.SetTitle("E-Rezept: Ausdruck zur Einlösung", true)
	f.SetAutoPageBreak(false, 0)
	f.SetMargins(margin, margin, margin)
	p := &pdf{f: f, tr: f.UnicodeTranslatorFromDescriptor("")}
	for i, ps := range pages {
		if err := p.page(s, ps, i+1, len(pages)); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	if err := f.Output(&out); err != nil {
		return nil, fmt.Errorf("printout: %w", err)
	}
	return out.Bytes(), nil
}

type pdf struct {
	f  *fpdf.Fpdf
	tr func(string) string // UTF-8 to cp1252
}

func (p *pdf) page(s Sheet, ps []Prescription, n, of int) error {
	f := p.f
	f.AddPage()
	f.SetTextColor(0, 0, 0)
	f.SetDrawColor(160, 160, 160)
	f.SetLineWidth(0.2)

	// The collective code at the top right.
	all, err := p.code(ps)
	if err != nil {
		return err
	}
	cw := codeWidth(all)
	cx, cy := snap(pageW-margin-cw), snap(margin)
	p.drawCode(all, cx, cy)
	f.SetFont("Helvetica", "", 7)
	capW := max(cw+8, 50)
	f.SetXY(min(cx+cw/2-capW/2, pageW-8-capW), cy+cw+2)
	p.multi(capW, 3, "Sammelcode für alle Rezepte dieser Seite", "C", 2)
	codeBottom := f.GetY()

	// The header at the left.
	textW := cx - gap - margin
	f.SetXY(margin, margin)
	f.SetFont("Helvetica", "B", 15)
	p.multi(textW, 7, "Ausdruck zur Einlösung Ihres E-Rezeptes", "L", 2)
	f.SetY(f.GetY() + 3)
	p.field(textW, "Patient/in", s.Patient)
	p.field(textW, "geboren am", date(s.BirthDate))
	p.field(textW, "ausgestellt am", s.Issued.Format("02.01.2006"))
	p.field(textW, "Praxis", s.Practice)
	p.field(textW, "Ärztin/Arzt", s.Practitioner)

	y := max(f.GetY(), codeBottom) + 5
	f.Line(margin, y, pageW-margin, y)

	// One row for each prescription.
	for i, rx := range ps {
		one, err := p.code(ps[i : i+1])
		if err != nil {
			return err
		}
		y = snap(y + 5)
		w := codeWidth(one)
		p.drawCode(one, snap(margin), y)
		tx := snap(margin) + w + gap
		tw := pageW - margin - tx
		f.SetXY(tx, y)
		f.SetFont("Helvetica", "B", 12)
		p.multi(tw, 6, rx.Medication, "L", maxMedLines)
		f.SetX(tx)
		f.SetFont("Helvetica", "", 9)
		p.multi(tw, 5, "Rezept-ID: "+rx.PrescriptionID, "L", 1)
		y = max(f.GetY(), y+w) + 5
		f.Line(margin, y, pageW-margin, y)
	}

	y += 4
	f.SetXY(margin, y)
	f.SetFont("Helvetica", "", 9)
	p.multi(pageW-2*margin, 4.5, "In der Apotheke: Der Sammelcode löst alle Rezepte dieser Seite ein, "+
		"der Code neben einem Medikament nur dieses eine Rezept.", "L", 3)

	f.SetXY(margin, pageH-margin)
	f.SetFont("Helvetica", "", 8)
	f.SetTextColor(90, 90, 90)
	p.multi(pageW-2*margin, 4, fmt.Sprintf("Seite %d von %d", n, of), "C", 1)
	if err := f.Error(); err != nil {
		return fmt.Errorf("printout: %w", err)
	}
	return nil
}

// code encodes the Data Matrix of ps.
func (p *pdf) code(ps []Prescription) (barcode.Barcode, error) {
	content, err := DataMatrix(ps)
	if err != nil {
		return nil, err
	}
	c, err := datamatrix.Encode(content)
	if err != nil {
		return nil, fmt.Errorf("printout: Data Matrix: %w", err)
	}
	return c, nil
}

func codeWidth(c barcode.Barcode) float64 {
	return float64(c.Bounds().Dx()) * module
}

// snap rounds a position (from the page's left or top edge) to the module grid.
func snap(v float64) float64 {
	return math.Round(v/module) * module
}

// drawCode draws c with its top left corner at x, y: one filled rectangle for each horizontal
// run of dark modules. The page around it is white, which gives the quiet zone.
func (p *pdf) drawCode(c barcode.Barcode, x, y float64) {
	f := p.f
	f.SetFillColor(0, 0, 0)
	b := c.Bounds()
	dark := func(col, row int) bool {
		return color.GrayModel.Convert(c.At(col, row)).(color.Gray).Y < 128
	}
	for row := b.Min.Y; row < b.Max.Y; row++ {
		for col := b.Min.X; col < b.Max.X; {
			if !dark(col, row) {
				col++
				continue
			}
			start := col
			for col < b.Max.X && dark(col, row) {
				col++
			}
			f.Rect(x+float64(start-b.Min.X)*module, y+float64(row-b.Min.Y)*module,
				float64(col-start)*module, module, "F")
		}
	}
}

// field prints a label and its value on one line (the value wraps over two at most).
func (p *pdf) field(w float64, label, value string) {
	f := p.f
	const lw = 30.0
	f.SetFont("Helvetica", "", 9)
	f.SetTextColor(90, 90, 90)
	f.CellFormat(lw, 6, p.tr(label), "", 0, "LM", false, 0, "")
	f.SetFont("Helvetica", "", 11)
	f.SetTextColor(0, 0, 0)
	p.multi(w-lw, 6, value, "L", 2)
	f.SetX(margin)
}

// multi prints text from the current position in lines of width w and height h, at most max
// of them; a longer text ends with "…". Control characters print as spaces.
func (p *pdf) multi(w, h float64, text, align string, maxLines int) {
	f := p.f
	text = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, text)
	raw := p.tr(text)
	lines := f.SplitLines([]byte(raw), w)
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		last := string(lines[maxLines-1])
		ellipsis := p.tr("…")
		for last != "" && f.GetStringWidth(last+ellipsis) > w-2*f.GetCellMargin() {
			last = last[:len(last)-1]
		}
		lines[maxLines-1] = []byte(strings.TrimRight(last, " ") + ellipsis)
	}
	x := f.GetX()
	for _, l := range lines {
		f.SetX(x)
		f.CellFormat(w, h, string(l), "", 2, align+"M", false, 0, "")
	}
	if len(lines) == 0 {
		f.SetY(f.GetY() + h)
	}
	f.SetX(x)
}

// date turns a FHIR date YYYY-MM-DD into DD.MM.YYYY and leaves anything else as it is.
func date(s string) string {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Format("02.01.2006")
	}
	return s
}
