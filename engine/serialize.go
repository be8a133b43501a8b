package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kilnml/kiln/ir"
)

// Plan file layout (all integers little-endian):
//
//	"KILNPLAN" | u32 format version | u32 section count
//	section*:  [4]byte tag | u64 payload length | payload | zero padding to 64 bytes
//	the last section is "CSUM": the SHA-256 of every byte before it.
//
// Sections: "META" (JSON Meta), "PROG" (JSON program: values, steps,
// bindings, profiles), "WGHT" (weights: u32 count, then per weight u32
// header length, JSON header {name,dtype,dims}, padding to 64, u64 data
// length, data, padding to 64). Unknown tags are skipped, so a newer writer
// can add sections that older readers ignore; a newer format version is
// refused with the reason.
//
// The version goes up whenever a plan may hold something an older reader
// would silently misread rather than skip. Version 2: layers may carry
// attributes version-1 kilns ignore (the fused 2x2 max pool of
// kiln.Conv/kiln.QConv, E5M2 activation codes), so a version-1 kiln must
// refuse such plans; version-1 plans mean the same to this reader.
// Version 3: quantized layers may read their residual as codes (kilnq's
// z_scale/z_zero), which a version-2 kiln would read as float32.
// Version 4: quantized layers may quantize before the residual add
// (kilnq's m_scale/m_zero), which a version-3 kiln would skip.
const (
	planMagic     = "KILNPLAN"
	FormatVersion = 4
	align         = 64
	// maxJSONSection bounds the structure sections of a plan; weights are
	// bounded by the file size itself.
	maxJSONSection = 256 << 20
)

// FormatError reports a plan file kiln cannot read, and why.
type FormatError struct {
	File   string
	Reason string
}

func (e *FormatError) Error() string {
	if e.File == "" {
		return "plan: " + e.Reason
	}
	return e.File + ": " + e.Reason
}

type program struct {
	Values   []Value   `json:"values"`
	Steps    []Step    `json:"steps"`
	Inputs   []Binding `json:"inputs"`
	Outputs  []Binding `json:"outputs"`
	Profiles []Profile `json:"profiles"`
}

type weightHeader struct {
	Name  string   `json:"name"`
	DType ir.DType `json:"dtype"`
	Dims  []int64  `json:"dims"`
}

// Serialize writes the plan in kiln's plan format.
func (p *Plan) Serialize() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("plan: refusing to write an invalid plan: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(planMagic)
	binary.Write(&b, binary.LittleEndian, uint32(FormatVersion))
	binary.Write(&b, binary.LittleEndian, uint32(4))
	meta, err := json.Marshal(p.Meta)
	if err != nil {
		return nil, err
	}
	writeSection(&b, "META", meta)
	prog, err := json.Marshal(program{p.Values, p.Steps, p.Inputs, p.Outputs, p.Profiles})
	if err != nil {
		return nil, err
	}
	writeSection(&b, "PROG", prog)
	// Weights: the payload is built in place so that data offsets are
	// aligned relative to the file start.
	b.WriteString("WGHT")
	lenAt := b.Len()
	binary.Write(&b, binary.LittleEndian, uint64(0))
	start := b.Len()
	binary.Write(&b, binary.LittleEndian, uint32(len(p.Weights)))
	for _, w := range p.Weights {
		if err := w.Check(); err != nil {
			return nil, fmt.Errorf("plan: weight %q: %w", w.Name, err)
		}
		h, _ := json.Marshal(weightHeader{w.Name, w.DType, w.Dims})
		binary.Write(&b, binary.LittleEndian, uint32(len(h)))
		b.Write(h)
		pad(&b)
		binary.Write(&b, binary.LittleEndian, uint64(len(w.Data)))
		pad(&b)
		b.Write(w.Data)
		pad(&b)
	}
	out := b.Bytes()
	binary.LittleEndian.PutUint64(out[lenAt:], uint64(b.Len()-start))
	sum := sha256.Sum256(b.Bytes())
	// The checksum ends the file (no padding), so any truncation shows.
	b.WriteString("CSUM")
	binary.Write(&b, binary.LittleEndian, uint64(len(sum)))
	b.Write(sum[:])
	return b.Bytes(), nil
}

func writeSection(b *bytes.Buffer, tag string, payload []byte) {
	b.WriteString(tag)
	binary.Write(b, binary.LittleEndian, uint64(len(payload)))
	b.Write(payload)
	pad(b)
}

func pad(b *bytes.Buffer) {
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
}

// SaveFile writes the plan atomically (temporary file, then rename).
func (p *Plan) SaveFile(path string) error {
	data, err := p.Serialize()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ReadPlanFile reads and checks a plan file.
func ReadPlanFile(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := ir.AlignedBytes(st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, &FormatError{path, "truncated: " + err.Error()}
	}
	p, err := DeserializePlan(buf)
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.File = path
	}
	return p, err
}

// IsPlan reports whether data starts like a kiln plan.
func IsPlan(data []byte) bool { return bytes.HasPrefix(data, []byte(planMagic)) }

// DeserializePlan parses a plan. Weight tensors alias data (which should be
// 8-byte aligned, as ReadPlanFile's buffer is; otherwise they are copied).
func DeserializePlan(data []byte) (*Plan, error) {
	fail := func(format string, args ...any) (*Plan, error) {
		return nil, &FormatError{Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) < 16 || !IsPlan(data) {
		return fail("not a kiln plan file (bad magic)")
	}
	ver := binary.LittleEndian.Uint32(data[8:])
	if ver == 0 || ver > FormatVersion {
		return fail("plan format version %d is not readable by this kiln (reads version %d): rebuild the engine or upgrade kiln", ver, FormatVersion)
	}
	// Walk sections; the checksum covers everything before CSUM.
	sections := map[string][]byte{}
	pos := 16
	sawSum := false
	for pos < len(data) {
		if len(data)-pos < 12 {
			return fail("truncated section header at byte %d", pos)
		}
		tag := string(data[pos : pos+4])
		n := binary.LittleEndian.Uint64(data[pos+4:])
		body := pos + 12
		if n > uint64(len(data)-body) {
			return fail("section %q at byte %d claims %d bytes, only %d remain (truncated file?)", tag, pos, n, len(data)-body)
		}
		payload := data[body : body+int(n)]
		if tag == "CSUM" {
			sum := sha256.Sum256(data[:pos])
			if len(payload) != len(sum) || !bytes.Equal(payload, sum[:]) {
				return fail("checksum mismatch: the file is corrupt")
			}
			if body+int(n) != len(data) {
				return fail("%d bytes after the checksum: the file is corrupt", len(data)-body-int(n))
			}
			sawSum = true
			break
		}
		sections[tag] = payload
		pos = body + int(n)
		if r := pos % align; r != 0 {
			pos += align - r
		}
	}
	if !sawSum {
		return fail("no checksum section: the file is truncated")
	}
	for _, tag := range []string{"META", "PROG", "WGHT"} {
		if _, ok := sections[tag]; !ok {
			return fail("missing %s section", tag)
		}
	}
	p := &Plan{}
	if len(sections["META"]) > maxJSONSection || len(sections["PROG"]) > maxJSONSection {
		return fail("structure section larger than %d bytes", maxJSONSection)
	}
	if err := json.Unmarshal(sections["META"], &p.Meta); err != nil {
		return fail("META: %v", err)
	}
	var prog program
	if err := json.Unmarshal(sections["PROG"], &prog); err != nil {
		return fail("PROG: %v", err)
	}
	p.Values, p.Steps, p.Inputs, p.Outputs, p.Profiles = prog.Values, prog.Steps, prog.Inputs, prog.Outputs, prog.Profiles
	w, err := readWeights(data, sections["WGHT"])
	if err != nil {
		return fail("WGHT: %v", err)
	}
	p.Weights = w
	if err := p.Validate(); err != nil {
		return fail("inconsistent plan: %v", err)
	}
	return p, nil
}

func readWeights(file, sec []byte) ([]*ir.Tensor, error) {
	// Offsets inside sec are aligned relative to the file start.
	off := offsetIn(file, sec)
	r := 0
	need := func(n int) error {
		if n < 0 || n > len(sec)-r {
			return fmt.Errorf("truncated at byte %d", off+r)
		}
		return nil
	}
	alignR := func() {
		if m := (off + r) % align; m != 0 {
			r += align - m
		}
	}
	if err := need(4); err != nil {
		return nil, err
	}
	count := int(binary.LittleEndian.Uint32(sec[r:]))
	r += 4
	if count > len(sec)/8 {
		return nil, fmt.Errorf("%d weights cannot fit in %d bytes", count, len(sec))
	}
	out := make([]*ir.Tensor, 0, count)
	for i := 0; i < count; i++ {
		if err := need(4); err != nil {
			return nil, err
		}
		hl := int(binary.LittleEndian.Uint32(sec[r:]))
		r += 4
		if err := need(hl); err != nil {
			return nil, err
		}
		var h weightHeader
		if err := json.Unmarshal(sec[r:r+hl], &h); err != nil {
			return nil, fmt.Errorf("weight %d: %v", i, err)
		}
		r += hl
		alignR()
		if err := need(8); err != nil {
			return nil, err
		}
		n := binary.LittleEndian.Uint64(sec[r:])
		r += 8
		alignR()
		if n > uint64(len(sec)-r) {
			return nil, fmt.Errorf("weight %q claims %d bytes, %d remain", h.Name, n, len(sec)-r)
		}
		t := &ir.Tensor{Name: h.Name, DType: h.DType, Dims: h.Dims, Data: sec[r : r+int(n)]}
		if err := t.Check(); err != nil {
			return nil, err
		}
		if len(t.Data) > 0 && uintptrOf(t.Data)%8 != 0 {
			t.Data = append(ir.AlignedBytes(int64(len(t.Data)))[:0], t.Data...)
		}
		out = append(out, t)
		r += int(n)
		alignR()
	}
	return out, nil
}
