package tensorio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ir"
)

// want recomputes the values gen.py wrote for a NumPy type code and shape.
func want(code string, dims []int64) []float64 {
	n, _ := ir.NumElements(dims)
	out := make([]float64, n)
	for i := range out {
		b := float64(i)
		switch code[0] {
		case 'b':
			out[i] = 0
			if i%3 == 0 {
				out[i] = 1
			}
		case 'u':
			out[i] = b
		case 'i':
			out[i] = b - float64(n/2)
		default:
			out[i] = (b - float64(n/2)) * 0.5
		}
	}
	return out
}

func checkValues(t *testing.T, name string, got *ir.Tensor, dt ir.DType, dims []int64, vals []float64) {
	t.Helper()
	if got.DType != dt || fmt.Sprint(got.Dims) != fmt.Sprint(dims) {
		t.Fatalf("%s: got %s%v, want %s%v", name, got.DType, got.Dims, dt, dims)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i, v := range vals {
		if g := got.Float64At(int64(i)); g != v {
			t.Fatalf("%s: element %d is %v, want %v", name, i, g, v)
		}
	}
}

func TestReadNumPyFiles(t *testing.T) {
	cases := []struct {
		file string
		code string
		dt   ir.DType
		dims []int64
	}{
		{"f4_2x3x4.npy", "f4", ir.Float32, []int64{2, 3, 4}},
		{"f8_be_fortran.npy", "f8", ir.Float64, []int64{2, 3, 4}},
		{"scalar_i8.npy", "", ir.Int64, []int64{}},
		{"empty_f4.npy", "f4", ir.Float32, []int64{0, 3}},
		{"v2_i4.npy", "i4", ir.Int32, []int64{5}},
		{"v3_u2.npy", "u2", ir.Uint16, []int64{3, 2}},
	}
	for _, c := range cases {
		got, err := ReadNPY(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		vals := []float64{-7}
		if c.code != "" {
			vals = want(c.code, c.dims)
		}
		checkValues(t, c.file, got, c.dt, c.dims, vals)
		if got.Name != strings.TrimSuffix(c.file, ".npy") {
			t.Errorf("%s: name %q", c.file, got.Name)
		}
	}
}

func TestReadNPZEveryDType(t *testing.T) {
	for _, file := range []string{"all_stored.npz", "all_deflated.npz"} {
		ts, err := ReadNPZ(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 42 { // 9 two-order codes × 2 orders × 2 layouts + 3 one-byte codes × 2 layouts
			t.Fatalf("%s: %d arrays, want 42", file, len(ts))
		}
		for _, x := range ts {
			code := x.Name[:2]
			dt := npyKinds[code]
			checkValues(t, file+":"+x.Name, x, dt, []int64{2, 3, 4}, want(code, []int64{2, 3, 4}))
			if code == "u8" || code == "i8" { // beyond Float64At's checks: exact integers
				for i, v := range want(code, x.Dims) {
					if x.Int64At(int64(i)) != int64(v) {
						t.Fatalf("%s: element %d", x.Name, i)
					}
				}
			}
		}
	}
}

// Our writer must produce what numpy.save produces, byte for byte.
func TestWriteMatchesNumPy(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("testdata", "f4_2x3x4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	x := ir.FromFloat64s(ir.Float32, []int64{2, 3, 4}, want("f4", []int64{2, 3, 4}))
	var buf bytes.Buffer
	if err := EncodeNPY(&buf, x); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), ref) {
		t.Fatalf("encoding differs from numpy.save:\n got %q\nwant %q", buf.Bytes()[:80], ref[:80])
	}
}

func TestRoundTripEveryDType(t *testing.T) {
	shapes := [][]int64{{}, {0}, {5}, {2, 3}, {1, 2, 3, 2}}
	for code, dt := range npyKinds {
		for _, dims := range shapes {
			x := ir.FromFloat64s(dt, dims, want(code, dims))
			x.Name = "x"
			var buf bytes.Buffer
			if err := EncodeNPY(&buf, x); err != nil {
				t.Fatal(err)
			}
			if buf.Len()%64 != 0 && len(x.Data) == 0 {
				t.Errorf("%s%v: header not padded to 64 bytes", dt, dims)
			}
			got, err := DecodeNPYBytes(buf.Bytes())
			if err != nil {
				t.Fatalf("%s%v: %v", dt, dims, err)
			}
			if !bytes.Equal(got.Data, x.Data) || fmt.Sprint(got.Dims) != fmt.Sprint(x.Dims) {
				t.Fatalf("%s%v: round trip changed the tensor", dt, dims)
			}
		}
	}
}

func TestWriteNPZRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := ir.FromFloat64s(ir.Float32, []int64{2, 2}, []float64{1, 2, 3, 4})
	a.Name = "a"
	b := ir.FromInt64s(ir.Int64, []int64{3}, []int64{-1, 0, 1 << 40})
	b.Name = "b"
	for _, compress := range []bool{false, true} {
		p := filepath.Join(dir, fmt.Sprint(compress)+".npz")
		if err := WriteNPZ(p, []*ir.Tensor{a, b}, compress); err != nil {
			t.Fatal(err)
		}
		got, err := ReadNPZ(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" ||
			!bytes.Equal(got[0].Data, a.Data) || !bytes.Equal(got[1].Data, b.Data) {
			t.Fatalf("compress=%v: round trip changed the arrays", compress)
		}
	}
}

func TestWriteUnsupportedDType(t *testing.T) {
	x := ir.NewTensor(ir.BFloat16, []int64{2})
	x.Name = "w"
	err := EncodeNPY(&bytes.Buffer{}, x)
	if err == nil || !strings.Contains(err.Error(), "bfloat16") || !strings.Contains(err.Error(), `"w"`) {
		t.Fatalf("got %v", err)
	}
}

// npyFile builds a .npy stream from a version, a header dict and data.
func npyFile(major byte, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		b.Write([]byte{byte(len(dict)), byte(len(dict) >> 8)})
	} else {
		b.Write([]byte{byte(len(dict)), byte(len(dict) >> 8), byte(len(dict) >> 16), byte(len(dict) >> 24)})
	}
	b.WriteString(dict)
	b.Write(data)
	return b.Bytes()
}

func TestBadFiles(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"
	cases := []struct {
		name string
		file []byte
		err  string
	}{
		{"empty", nil, "magic"},
		{"not npy", []byte("PK\x03\x04 this is a zip"), "magic"},
		{"short preamble", []byte(magic + "\x01"), "truncated"},
		{"version 4", npyFile(4, ok, make([]byte, 8)), "version 4.0"},
		{"header past end", append([]byte(magic+"\x01\x00\xff\xff"), "{}"...), "header claims 65535 bytes"},
		{"huge v2 header", []byte(magic + "\x02\x00\xff\xff\xff\x7f{"), "over the limit"},
		{"missing data", npyFile(1, ok, make([]byte, 7)), "needs 8 bytes of data, the file has 7"},
		{"trailing data", npyFile(1, ok, make([]byte, 9)), "needs 8 bytes of data, the file has 9"},
		{"giant shape", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 100000000), }", nil), "needs 80000000000000000 bytes"},
		{"shape times size overflows", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", nil), "more than 2^62 bytes"},
		{"overflowing shape", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", nil), "overflow"},
		{"dim beyond int64", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", nil), "out of range"},
		{"negative dim", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", nil), "non-negative integer"},
		{"object dtype", npyFile(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", nil), "pickled"},
		{"string dtype", npyFile(1, "{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", nil), "string dtype"},
		{"complex dtype", npyFile(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", nil), "unsupported dtype"},
		{"record dtype", npyFile(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", nil), "structured"},
		{"no shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False}", nil), "no 'shape'"},
		{"no descr", npyFile(1, "{'fortran_order': False, 'shape': ()}", nil), "no 'descr'"},
		{"no fortran", npyFile(1, "{'descr': '<f4', 'shape': ()}", nil), "no 'fortran_order'"},
		{"extra key", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", nil), "unexpected key"},
		{"bad bool", npyFile(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", nil), "True or False"},
		{"not a dict", npyFile(1, "['descr']", nil), "'{'"},
		{"unterminated", npyFile(1, "{'descr': '<f4", nil), "unterminated string"},
		{"key without colon", npyFile(1, "{'descr: '<f4'", nil), "missing ':'"},
		{"garbage after", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", nil), "after the dictionary"},
		{"shape not tuple", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", nil), "expected '('"},
		{"too many dims", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.Repeat("1,", 65)+")}", nil), "64 dimensions"},
	}
	for _, c := range cases {
		_, err := DecodeNPYBytes(c.file)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.err)
		}
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.npy")
	os.WriteFile(p, []byte("hello"), 0o644)
	if _, err := ReadNPY(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v", err)
	}
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("got %v", err)
	}
	if _, err := ReadNPY(filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Errorf("got %v", err)
	}
}
