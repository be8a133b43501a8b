package cuda

import (
	"bytes"
	"testing"
)

// Pinned memory round-trips through the device, and the copy rates of
// pageable and pinned host memory are logged (information, not a bound).
func TestPinnedRoundTrip(t *testing.T) {
	d, s := needDevice(t)
	const n = 64 << 20
	src, err := HostAlloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer FreeHost(src)
	dst, err := HostAlloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer FreeHost(dst)
	for i := range src {
		src[i] = byte(i*131 + i>>13)
	}
	p, err := d.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer Free(p)
	q, _ := d.Alloc(n)
	defer Free(q)
	if err := s.HtoD(p, src); err != nil {
		t.Fatal(err)
	}
	if err := s.DtoD(q, p, n); err != nil {
		t.Fatal(err)
	}
	if err := s.DtoH(dst, q); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, dst) {
		t.Fatal("pinned round trip changed the data")
	}
	// odd sizes and offsets inside the pinned buffer
	for _, c := range []struct{ off, n int }{{1, 1}, {3, 4095}, {4096, 4097}, {12345, 1 << 20}} {
		clear(dst)
		if err := s.HtoD(p, src[c.off:c.off+c.n]); err != nil {
			t.Fatal(err)
		}
		if err := s.DtoH(dst[c.off:c.off+c.n], p); err != nil {
			t.Fatal(err)
		}
		s.Sync()
		if !bytes.Equal(src[c.off:c.off+c.n], dst[c.off:c.off+c.n]) {
			t.Fatalf("round trip of %d bytes at %d differs", c.n, c.off)
		}
	}
	pageable := make([]byte, n)
	copy(pageable, src)
	rate := func(b []byte) float64 {
		e0, _ := NewEvent()
		e1, _ := NewEvent()
		best := float32(1e9)
		for range 3 {
			e0.Record(s)
			s.HtoD(p, b)
			e1.Record(s)
			e1.Sync()
			ms, _ := e1.Elapsed(e0)
			best = min(best, ms)
		}
		return float64(len(b)) / float64(best) / 1e6
	}
	t.Logf("H2D of 64 MiB: pageable %.1f GB/s, pinned %.1f GB/s", rate(pageable), rate(src))
}

// A captured graph (memset, copies) replays with the same result as the
// eager launches, twice.
func TestGraphCaptureReplay(t *testing.T) {
	d, s := needDevice(t)
	const n = 1 << 20
	host, err := HostAlloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer FreeHost(host)
	a, _ := d.Alloc(n)
	defer Free(a)
	b, _ := d.Alloc(n)
	defer Free(b)
	cs, err := d.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Destroy()
	if err := cs.BeginCapture(); err != nil {
		t.Fatal(err)
	}
	cs.HtoD(a, host)
	cs.Memset(b, 7, n/2)
	cs.DtoD(b+n/2, a+n/2, n/2)
	cs.DtoH(host, b)
	gr, err := cs.EndCapture()
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Destroy()
	for round := range 2 {
		for i := range host {
			host[i] = byte(i + round)
		}
		want := append([]byte(nil), host...)
		for i := range n / 2 {
			want[i] = 7
		}
		if err := gr.Launch(s); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(host, want) {
			t.Fatalf("round %d: the graph's result differs", round)
		}
	}
}

// A cuBLASLt handle is created and destroyed (twice: Destroy is
// idempotent).
func TestBLASDestroy(t *testing.T) {
	needDevice(t)
	b, err := NewBLAS()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
}
