// Package tensorio reads and writes tensors in NumPy's formats: .npy (one
// array) and .npz (a zip of .npy files, stored or deflated). Arrays become
// ir.Tensors in C order with little-endian data, whatever the file's byte
// order and memory layout.
//
// Files are untrusted: every length in a header is checked against the bytes
// that are really there before anything is allocated, and every error names
// the file.
package tensorio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kilnml/kiln/ir"
)

// magic starts every .npy file.
const magic = "\x93NUMPY"

// maxHeaderLen bounds the header dictionary. NumPy itself refuses headers
// over 10,000 bytes unless told otherwise; a megabyte leaves room for any
// honest writer while keeping a hostile length field from costing memory.
const maxHeaderLen = 1 << 20

// Header is the parsed dictionary of a .npy header.
type Header struct {
	Major, Minor int
	DType        ir.DType
	// ByteOrder is binary.LittleEndian or binary.BigEndian; single-byte
	// types report little endian.
	ByteOrder    binary.ByteOrder
	ElemSize     int
	FortranOrder bool
	Shape        []int64
	// DataOffset is where the array data starts (preamble plus header).
	DataOffset int64
}

// NumElements is the product of the shape (checked for overflow when parsed).
func (h *Header) NumElements() int64 {
	n, _ := ir.NumElements(h.Shape)
	return n
}

// DataBytes is the size of the array data.
func (h *Header) DataBytes() int64 { return h.NumElements() * int64(h.ElemSize) }

// npyKinds maps a NumPy type character and element size to an ir.DType.
var npyKinds = map[string]ir.DType{
	"f2": ir.Float16, "f4": ir.Float32, "f8": ir.Float64,
	"i1": ir.Int8, "i2": ir.Int16, "i4": ir.Int32, "i8": ir.Int64,
	"u1": ir.Uint8, "u2": ir.Uint16, "u4": ir.Uint32, "u8": ir.Uint64,
	"b1": ir.Bool,
}

// descrOf returns the NumPy descr ("<f4") of an ir.DType, or "" if NumPy has none.
func descrOf(dt ir.DType) string {
	for k, v := range npyKinds {
		if v == dt {
			if k[1] == '1' {
				return "|" + k
			}
			return "<" + k
		}
	}
	return ""
}

// ParsePreamble reads the magic string, the version and the header length
// from the start of a file (at least 12 bytes, or what there is). It returns
// the version and the offsets of the header dictionary.
func ParsePreamble(b []byte) (major, minor int, hdrStart, hdrLen int64, err error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return 0, 0, 0, 0, errors.New("not a .npy file (no \\x93NUMPY magic)")
	}
	if len(b) < 8 {
		return 0, 0, 0, 0, errors.New("truncated .npy preamble")
	}
	major, minor = int(b[6]), int(b[7])
	switch major {
	case 1:
		if len(b) < 10 {
			return 0, 0, 0, 0, errors.New("truncated .npy preamble")
		}
		return major, minor, 10, int64(binary.LittleEndian.Uint16(b[8:10])), nil
	case 2, 3:
		if len(b) < 12 {
			return 0, 0, 0, 0, errors.New("truncated .npy preamble")
		}
		n := int64(binary.LittleEndian.Uint32(b[8:12]))
		if n > maxHeaderLen {
			return 0, 0, 0, 0, fmt.Errorf("header length %d is over the limit of %d bytes", n, maxHeaderLen)
		}
		return major, minor, 12, n, nil
	}
	return 0, 0, 0, 0, fmt.Errorf("unsupported .npy format version %d.%d", major, minor)
}

// ParseHeader parses a whole .npy header: preamble and dictionary. b must
// hold at least the header (the data may follow).
func ParseHeader(b []byte) (*Header, error) {
	major, minor, start, n, err := ParsePreamble(b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < start+n {
		return nil, fmt.Errorf("header claims %d bytes but the file has only %d after the preamble", n, int64(len(b))-start)
	}
	h, err := parseDict(string(b[start : start+n]))
	if err != nil {
		return nil, fmt.Errorf("bad .npy header: %w", err)
	}
	h.Major, h.Minor, h.DataOffset = major, minor, start+n
	return h, nil
}

// parseDict parses the Python dict literal that NumPy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
func parseDict(s string) (*Header, error) {
	p := &pyParser{s: s}
	p.space()
	if !p.eat('{') {
		return nil, errors.New("header does not start with '{'")
	}
	var descr, fortran, shape bool
	h := &Header{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("dictionary key: %w", err)
		}
		p.space()
		if !p.eat(':') {
			return nil, fmt.Errorf("missing ':' after key %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if p.peek() == '[' {
				return nil, errors.New("structured dtypes (record arrays) are not supported")
			}
			d, err := p.str()
			if err != nil {
				return nil, fmt.Errorf("descr: %w", err)
			}
			if err := h.setDescr(d); err != nil {
				return nil, err
			}
			descr = true
		case "fortran_order":
			v, err := p.boolean()
			if err != nil {
				return nil, fmt.Errorf("fortran_order: %w", err)
			}
			h.FortranOrder, fortran = v, true
		case "shape":
			sh, err := p.tuple()
			if err != nil {
				return nil, fmt.Errorf("shape: %w", err)
			}
			if _, err := ir.NumElements(sh); err != nil {
				return nil, fmt.Errorf("shape %v: %w", sh, err)
			}
			h.Shape, shape = sh, true
		default:
			return nil, fmt.Errorf("unexpected key %q", key)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if p.eat('}') {
			break
		}
		return nil, fmt.Errorf("expected ',' or '}' at offset %d", p.i)
	}
	if rest := strings.TrimSpace(s[p.i:]); rest != "" {
		return nil, fmt.Errorf("unexpected text after the dictionary: %.20q", rest)
	}
	switch {
	case !descr:
		return nil, errors.New("no 'descr' key")
	case !fortran:
		return nil, errors.New("no 'fortran_order' key")
	case !shape:
		return nil, errors.New("no 'shape' key")
	}
	if n := h.NumElements(); n > 0 && n > (1<<62)/int64(h.ElemSize) {
		return nil, fmt.Errorf("shape %v of %s needs more than 2^62 bytes", h.Shape, h.DType)
	}
	return h, nil
}

// setDescr decodes a simple NumPy type string such as "<f4" or "|b1".
func (h *Header) setDescr(d string) error {
	if len(d) < 2 {
		return fmt.Errorf("unsupported dtype %q", d)
	}
	order, kind := d[0], d[1:]
	if order != '<' && order != '>' && order != '|' && order != '=' {
		order, kind = '=', d // NumPy accepts "f4" without an order character
	}
	if kind == "?" {
		kind = "b1"
	}
	dt, ok := npyKinds[kind]
	if !ok {
		switch kind[0] {
		case 'O':
			return fmt.Errorf("dtype %q is a pickled object array, which kiln never loads", d)
		case 'U', 'S', 'a':
			return fmt.Errorf("string dtype %q is not supported", d)
		}
		return fmt.Errorf("unsupported dtype %q (kiln reads f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)", d)
	}
	h.DType = dt
	h.ElemSize = int(kind[1] - '0')
	h.ByteOrder = binary.LittleEndian
	if order == '>' && h.ElemSize > 1 {
		h.ByteOrder = binary.BigEndian
	}
	if order == '=' && h.ElemSize > 1 && nativeBig() {
		h.ByteOrder = binary.BigEndian
	}
	return nil
}

func nativeBig() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 0
}

// pyParser reads the small subset of Python literals used in .npy headers.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// str reads a quoted string without escapes ('descr', "<f4").
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a quoted string at offset %d", p.i)
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", errors.New("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

func (p *pyParser) boolean() (bool, error) {
	for _, w := range []struct {
		s string
		v bool
	}{{"True", true}, {"False", false}} {
		if strings.HasPrefix(p.s[p.i:], w.s) {
			p.i += len(w.s)
			return w.v, nil
		}
	}
	return false, fmt.Errorf("expected True or False at offset %d", p.i)
}

// tuple reads a tuple of non-negative integers: (), (3,), (2, 3), (2L, 3L).
func (p *pyParser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("expected '(' at offset %d", p.i)
	}
	dims := []int64{}
	for {
		p.space()
		if p.eat(')') {
			return dims, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if start == p.i {
			return nil, fmt.Errorf("expected a non-negative integer at offset %d", start)
		}
		v, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dimension %q: %w", p.s[start:p.i], err)
		}
		if len(dims) >= 64 {
			return nil, errors.New("more than 64 dimensions")
		}
		dims = append(dims, v)
		p.eat('L') // Python 2 long literal
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if p.eat(')') {
			return dims, nil
		}
		return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.i)
	}
}
