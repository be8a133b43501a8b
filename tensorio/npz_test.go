package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeZip(t *testing.T, entries map[string][]byte, method uint16) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.npz")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func TestBadNPZ(t *testing.T) {
	good := npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", make([]byte, 8))

	p := writeZip(t, map[string][]byte{"x.npy": []byte("not npy at all")}, zip.Deflate)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), `entry "x.npy"`) || !strings.Contains(err.Error(), "magic") {
		t.Errorf("garbage entry: %v", err)
	}

	p = writeZip(t, map[string][]byte{"x.npy": good[:len(good)-1]}, zip.Store)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), "needs 8 bytes") {
		t.Errorf("short entry: %v", err)
	}

	// A deflated entry whose central directory claims 2^40 bytes: refused
	// before anything is allocated.
	p = writeZip(t, map[string][]byte{"x.npy": good}, zip.Deflate)
	b, _ := os.ReadFile(p)
	cd := bytes.LastIndex(b, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(b[cd+24:], 0xfffffff0)
	os.WriteFile(p, b, 0o644)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), "more than DEFLATE can produce") {
		t.Errorf("lying size: %v", err)
	}

	// A stored entry that claims fewer bytes than it holds.
	p = writeZip(t, map[string][]byte{"x.npy": good}, zip.Store)
	b, _ = os.ReadFile(p)
	cd = bytes.LastIndex(b, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(b[cd+24:], uint32(len(good)-4))
	os.WriteFile(p, b, 0o644)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), "stored entry claims") {
		t.Errorf("stored size mismatch: %v", err)
	}

	// Corrupt the data: the CRC check must catch it.
	p = writeZip(t, map[string][]byte{"x.npy": good}, zip.Store)
	b, _ = os.ReadFile(p)
	i := bytes.Index(b, good)
	b[i+len(good)-1] ^= 0xff
	os.WriteFile(p, b, 0o644)
	if _, err := ReadNPZ(p); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupt data: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.npy"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add(npyFile(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (2L, 3L), }", nil))
	f.Add(npyFile(3, "{\"descr\": \"f4\", \"fortran_order\": False, \"shape\": (), }", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if h.DataOffset > int64(len(b)) || h.ElemSize < 1 || h.ElemSize > 8 || h.DataBytes() < 0 {
			t.Fatalf("inconsistent header %+v", h)
		}
		// Whatever parses must decode or fail cleanly, never allocating
		// more than the input justifies.
		x, err := DecodeNPYBytes(b)
		if err == nil && int64(len(x.Data)) > int64(len(b)) {
			t.Fatalf("decoded %d bytes from a %d-byte file", len(x.Data), len(b))
		}
	})
}

func FuzzDecodeNPZ(f *testing.F) {
	for _, p := range []string{"all_stored.npz", "all_deflated.npz"} {
		b, _ := os.ReadFile(filepath.Join("testdata", p))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := DecodeNPZ(bytes.NewReader(b), int64(len(b)), "fuzz.npz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.npz: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		total := int64(0)
		for _, x := range ts {
			if err := x.Check(); err != nil {
				t.Fatal(err)
			}
			total += int64(len(x.Data))
		}
		if total > int64(len(b))*maxDeflateRatio+1024*int64(len(ts)) {
			t.Fatalf("decoded %d bytes from a %d-byte archive", total, len(b))
		}
	})
}
