package cms

import (
	"errors"
	"fmt"
)

// maxBERDepth bounds nesting while normalising, so hostile input cannot exhaust the stack.
const maxBERDepth = 64

// errBER reports input that is not even BER.
var errBER = errors.New("not valid BER")

// normalize rewrites BER as DER-shaped bytes that encoding/asn1 accepts: indefinite lengths
// become definite, lengths become minimal and constructed OCTET STRINGs (the chunked eContent
// some Konnektors write) become primitive. Input that is already DER comes back unchanged.
func normalize(in []byte) ([]byte, error) {
	out, rest, err := normalizeElement(in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBER, len(rest))
	}
	return out, nil
}

// berHeader is one parsed identifier and length.
type berHeader struct {
	identifier []byte // the identifier octets as they were
	class      byte
	compound   bool
	tag        int
	indefinite bool
	length     int
}

func parseHeader(in []byte) (berHeader, []byte, error) {
	var h berHeader
	if len(in) < 2 {
		return h, nil, fmt.Errorf("%w: truncated header", errBER)
	}
	b := in[0]
	h.class = b >> 6
	h.compound = b&0x20 != 0
	i := 1
	if b&0x1f == 0x1f {
		tag := 0
		for {
			if i >= len(in) || i > 5 {
				return h, nil, fmt.Errorf("%w: bad high tag number", errBER)
			}
			c := in[i]
			i++
			tag = tag<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		h.tag = tag
	} else {
		h.tag = int(b & 0x1f)
	}
	h.identifier = in[:i]
	if i >= len(in) {
		return h, nil, fmt.Errorf("%w: truncated length", errBER)
	}
	l := in[i]
	i++
	switch {
	case l == 0x80:
		if !h.compound {
			return h, nil, fmt.Errorf("%w: indefinite length on a primitive value", errBER)
		}
		h.indefinite = true
	case l < 0x80:
		h.length = int(l)
	default:
		n := int(l & 0x7f)
		if n > 4 || i+n > len(in) {
			return h, nil, fmt.Errorf("%w: bad length", errBER)
		}
		for _, c := range in[i : i+n] {
			h.length = h.length<<8 | int(c)
		}
		i += n
		if h.length < 0 {
			return h, nil, fmt.Errorf("%w: bad length", errBER)
		}
	}
	if !h.indefinite && h.length > len(in)-i {
		return h, nil, fmt.Errorf("%w: value longer than its container", errBER)
	}
	return h, in[i:], nil
}

// normalizeElement normalises the first element of in and returns it and what follows.
func normalizeElement(in []byte, depth int) (out, rest []byte, err error) {
	if depth > maxBERDepth {
		return nil, nil, fmt.Errorf("%w: nested deeper than %d", errBER, maxBERDepth)
	}
	h, body, err := parseHeader(in)
	if err != nil {
		return nil, nil, err
	}
	if !h.compound {
		return appendHeader(nil, h.identifier, h.length, body[:h.length]), body[h.length:], nil
	}
	var content []byte
	var children [][]byte
	if h.indefinite {
		for {
			if len(body) >= 2 && body[0] == 0 && body[1] == 0 {
				body = body[2:]
				break
			}
			if len(body) == 0 {
				return nil, nil, fmt.Errorf("%w: missing end-of-contents", errBER)
			}
			var child []byte
			child, body, err = normalizeElement(body, depth+1)
			if err != nil {
				return nil, nil, err
			}
			children = append(children, child)
		}
		rest = body
	} else {
		inner := body[:h.length]
		rest = body[h.length:]
		for len(inner) > 0 {
			var child []byte
			child, inner, err = normalizeElement(inner, depth+1)
			if err != nil {
				return nil, nil, err
			}
			children = append(children, child)
		}
	}
	if h.class == 0 && h.tag == 4 { // constructed OCTET STRING: concatenate the chunks
		for _, c := range children {
			v, err := primitiveValue(c)
			if err != nil {
				return nil, nil, err
			}
			content = append(content, v...)
		}
		return appendHeader(nil, []byte{0x04}, len(content), content), rest, nil
	}
	for _, c := range children {
		content = append(content, c...)
	}
	id := append([]byte(nil), h.identifier...)
	return appendHeader(nil, id, len(content), content), rest, nil
}

// primitiveValue returns the contents of a normalised OCTET STRING chunk.
func primitiveValue(el []byte) ([]byte, error) {
	h, body, err := parseHeader(el)
	if err != nil {
		return nil, err
	}
	if h.class != 0 || h.tag != 4 || h.compound {
		return nil, fmt.Errorf("%w: OCTET STRING chunk of another type", errBER)
	}
	return body[:h.length], nil
}

// appendHeader writes identifier, minimal definite length and content.
func appendHeader(dst, identifier []byte, length int, content []byte) []byte {
	dst = append(dst, identifier...)
	switch {
	case length < 0x80:
		dst = append(dst, byte(length))
	default:
		var lb []byte
		for l := length; l > 0; l >>= 8 {
			lb = append([]byte{byte(l)}, lb...)
		}
		dst = append(dst, 0x80|byte(len(lb)))
		dst = append(dst, lb...)
	}
	return append(dst, content...)
}
