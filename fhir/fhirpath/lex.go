package fhirpath

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF        tokKind = iota
	tIdent              // name or `delimited name`
	tString             // 'text', escapes resolved
	tNumber             // 12 or 1.5
	tDate               // @2020-01-01, @2020-01-01T10:00:00Z, @T10:00
	tVar                // $this, $index
	tConst              // %resource
	tOp                 // punctuation and symbolic operators
	tDelimIdent         // `name`: an identifier that is never a keyword
)

type token struct {
	kind tokKind
	text string // identifier, resolved string, number or date text, operator
	pos  int    // byte offset in the expression
}

// lex splits an expression into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for {
		for i < len(src) && strings.IndexByte(" \t\r\n", src[i]) >= 0 {
			i++
		}
		if i == len(src) {
			return append(toks, token{kind: tEOF, pos: i}), nil
		}
		start := i
		c := src[i]
		switch {
		case isIdentStart(c):
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			toks = append(toks, token{tIdent, src[start:i], start})
		case c >= '0' && c <= '9':
			for i < len(src) && isDigit(src[i]) {
				i++
			}
			if i+1 < len(src) && src[i] == '.' && isDigit(src[i+1]) {
				i++
				for i < len(src) && isDigit(src[i]) {
					i++
				}
			}
			toks = append(toks, token{tNumber, src[start:i], start})
		case c == '\'':
			s, n, err := unquote(src[i:], '\'')
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", start, err)
			}
			i += n
			toks = append(toks, token{tString, s, start})
		case c == '`':
			s, n, err := unquote(src[i:], '`')
			if err == nil && s == "" {
				err = fmt.Errorf("empty name")
			}
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", start, err)
			}
			i += n
			toks = append(toks, token{tDelimIdent, s, start})
		case c == '@':
			i++
			for i < len(src) && (isDigit(src[i]) || strings.IndexByte("-:.TZ+", src[i]) >= 0) {
				if src[i] == '.' && (i+1 == len(src) || !isDigit(src[i+1])) {
					break // a following invocation, not fractional seconds
				}
				i++
			}
			toks = append(toks, token{tDate, src[start+1 : i], start})
		case c == '$' || c == '%':
			i++
			if c == '%' && i < len(src) && (src[i] == '\'' || src[i] == '`') {
				s, n, err := unquote(src[i:], src[i])
				if err != nil {
					return nil, fmt.Errorf("at %d: %w", start, err)
				}
				i += n
				toks = append(toks, token{tConst, s, start})
				continue
			}
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			if i == start+1 {
				return nil, fmt.Errorf("at %d: %q without a name", start, c)
			}
			kind := tVar
			if c == '%' {
				kind = tConst
			}
			toks = append(toks, token{kind, src[start+1 : i], start})
		default:
			op := ""
			for _, o := range []string{"!=", "!~", "<=", ">=", ".", ",", "(", ")", "[", "]", "=", "~", "<", ">", "|", "&", "+", "-", "*", "/"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("at %d: unexpected character %q", start, r)
			}
			i += len(op)
			toks = append(toks, token{tOp, op, start})
		}
	}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// unquote reads a quoted string or delimited identifier at the start of s, resolving the
// FHIRPath escapes, and returns it with the number of bytes it took.
func unquote(s string, quote byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case quote:
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) {
				return "", 0, fmt.Errorf("unterminated escape")
			}
			i++
			switch e := s[i]; e {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+5 > len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\u escape %q", s[i+1:i+5])
				}
				b.WriteRune(rune(n))
				i += 4
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c in a string", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated %c", quote)
}
