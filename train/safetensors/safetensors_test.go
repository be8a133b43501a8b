package safetensors

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	f := &File{
		Tensors: []Tensor{
			{Name: "b", DType: "F32", Shape: []int64{2}, Data: []byte{0, 0, 128, 63, 0, 0, 0, 64}},
			{Name: "a.weight", DType: "I64", Shape: []int64{1, 1}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
			{Name: "empty", DType: "F16", Shape: []int64{0, 3}, Data: []byte{}},
			{Name: "scalar", DType: "U8", Shape: nil, Data: []byte{9}},
		},
		Metadata: map[string]string{"format": "pt"},
	}
	b, err := Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	hl := binary.LittleEndian.Uint64(b)
	if (8+hl)%8 != 0 {
		t.Fatalf("data not aligned: header %d", hl)
	}
	if !strings.Contains(string(b[8:8+hl]), `"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`) {
		t.Fatalf("header %s", b[8:8+hl])
	}
	g, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if g.Metadata["format"] != "pt" || len(g.Tensors) != 4 {
		t.Fatalf("got %+v", g)
	}
	for _, want := range f.Tensors {
		got := g.Get(want.Name)
		if got == nil || got.DType != want.DType || !bytes.Equal(got.Data, want.Data) || len(got.Shape) != len(want.Shape) {
			t.Fatalf("%s: got %+v want %+v", want.Name, got, want)
		}
	}
}

// A file written by the reference Python implementation
// (safetensors.torch.save_file({"x": torch.tensor([1.0, 2.0])})).
func TestDecodeReferenceBytes(t *testing.T) {
	h := `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	b = append(b, 0, 0, 128, 63, 0, 0, 0, 64)
	f, err := Decode(b)
	if err != nil || f.Get("x") == nil || f.Get("x").Shape[0] != 2 {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestDecodeRejectsBadFiles(t *testing.T) {
	mk := func(h string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, data)...)
	}
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"short":          {[]byte{1, 2}, "too short"},
		"huge header":    {binary.LittleEndian.AppendUint64(nil, 1<<40), "header length"},
		"bad json":       {mk(`{"x":`, 0), "bad JSON"},
		"unknown dtype":  {mk(`{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`, 1), "unknown dtype"},
		"size mismatch":  {mk(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8 bytes"},
		"out of range":   {mk(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside"},
		"gap":            {mk(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), "gap or overlap"},
		"trailing":       {mk(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 3), "after the last"},
		"negative dim":   {mk(`{"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, 0), "negative"},
		"overflow shape": {mk(`{"x":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), "too large"},
		"bad metadata":   {mk(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
		"extra field":    {mk(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"z":1}}`, 1), "bad header entry"},
	}
	for name, c := range cases {
		if _, err := Decode(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, c.want)
		}
	}
}

func TestWriteFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(p, &File{Tensors: []Tensor{{Name: "x", DType: "U8", Shape: []int64{1}, Data: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	// A failing encode leaves the previous file untouched and no temp files.
	if err := WriteFile(p, &File{Tensors: []Tensor{{Name: "x", DType: "F32", Shape: []int64{1}, Data: []byte{1}}}}); err == nil {
		t.Fatal("want an error for a short tensor")
	}
	if err := WriteAtomic(p, func(w io.Writer) error { return os.ErrInvalid }); err == nil {
		t.Fatal("want the writer's error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries", len(ents))
	}
	f, err := ReadFile(p)
	if err != nil || f.Get("x").Data[0] != 1 {
		t.Fatalf("%v %v", f, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
