package cuda

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kilnml/kiln/floatx"
	"github.com/kilnml/kiln/gpu/cuda/kernels"
)

// needDevice opens GPU 0 and binds it, or skips with the loader's reason.
func needDevice(t *testing.T) (*Device, *Stream) {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Skip(err)
	}
	unbind, err := d.Bind()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unbind)
	s, err := d.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return d, s
}

func TestDeviceCopiesAndEvents(t *testing.T) {
	d, s := needDevice(t)
	ma, mi, _ := NVRTCVersion()
	t.Logf("%s (sm_%d%d, %d SMs), NVRTC %d.%d, cuBLASLt %d, libs %v", d.Name, d.Major, d.Minor, d.SMs, ma, mi, LtVersion(), Libs)
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	p, err := d.Alloc(int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	defer Free(p)
	q, _ := d.Alloc(int64(len(src)))
	defer Free(q)
	e0, _ := NewEvent()
	e1, _ := NewEvent()
	if err := e0.Record(s); err != nil {
		t.Fatal(err)
	}
	if err := s.HtoD(p, src); err != nil {
		t.Fatal(err)
	}
	if err := s.DtoD(q, p, int64(len(src))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(src))
	if err := s.DtoH(got, q); err != nil {
		t.Fatal(err)
	}
	e1.Record(s)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("round trip through the device changed the bytes")
	}
	ms, err := e1.Elapsed(e0)
	if err != nil || ms <= 0 {
		t.Fatalf("elapsed %v %v", ms, err)
	}
	// a failing call carries the driver's text
	if _, err := d.Alloc(1 << 50); err == nil || !bytes.Contains([]byte(err.Error()), []byte("memory")) {
		t.Errorf("huge allocation: %v", err)
	}
}

func TestCompileCachesAndLaunches(t *testing.T) {
	d, s := needDevice(t)
	t.Setenv("KILN_CUDA_CACHE", t.TempDir())
	t0 := time.Now()
	cubin, err := Compile(kernels.Name, kernels.Source, d.Arch())
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(t0)
	t0 = time.Now()
	again, err := Compile(kernels.Name, kernels.Source, d.Arch())
	if err != nil || !bytes.Equal(cubin, again) {
		t.Fatal("cache returned other bytes", err)
	}
	t.Logf("NVRTC compile %v, cache hit %v, CUBIN %d bytes", cold, time.Since(t0), len(cubin))
	t0 = time.Now()
	ig, err := Compile(kernels.IGemmName, kernels.IGemm, d.Arch())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC compile of igemm.cu %v, CUBIN %d bytes", time.Since(t0), len(ig))
	if d.Arch() == "sm_90a" { // wgmma
		t0 = time.Now()
		wg, err := Compile(kernels.WGemmName, kernels.WGemm, d.Arch())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("NVRTC compile of wgmma.cu %v, CUBIN %d bytes", time.Since(t0), len(wg))
	}
	if _, err := Compile("bad.cu", "extern \"C\" __global__ void f() { undeclared(); }", d.Arch()); err == nil || !bytes.Contains([]byte(err.Error()), []byte("undeclared")) {
		t.Errorf("compile error lacks NVRTC's log: %v", err)
	}
	m, err := d.Module(kernels.Name, kernels.Source)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Func("cast_f32_16")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Func("no_such_kernel"); err == nil {
		t.Error("missing kernel found")
	}
	n := 1000
	x := make([]float32, n)
	for i := range x {
		x[i] = rand.Float32()*200 - 100
	}
	px, _ := d.Upload(s, f32bytes(x))
	py, _ := d.Alloc(int64(2 * n))
	defer Free(px)
	defer Free(py)
	if err := f.Launch(s, [3]uint32{4, 1, 1}, [3]uint32{256, 1, 1}, 0, NewArgs(px, py, int64(n), 0)); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 2*n)
	s.DtoH(out, py)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if got, want := binary.LittleEndian.Uint16(out[2*i:]), floatx.F32ToF16(x[i]); got != want {
			t.Fatalf("half(%v) = %#x, want %#x", x[i], got, want)
		}
	}
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// TestGemmTypes checks Y = X·Wᵀ for every input type against float64 on
// the decoded inputs (int8 exactly).
func TestGemmTypes(t *testing.T) {
	d, s := needDevice(t)
	b, err := NewBLAS()
	if err != nil {
		t.Fatal(err)
	}
	const M, N, K = 160, 96, 272
	ws, _ := d.Alloc(32 << 20)
	defer Free(ws)
	for _, c := range []struct {
		in, out DataType
		bound   float64 // normalized MSE
	}{{R32F, R32F, 1e-12}, {R16F, R32F, 1e-12}, {R16BF, R32F, 1e-12}, {R8I, R32I, 0}, {R8FE4M3, R32F, 1e-6}, {R16BF, R16BF, 1e-4}} {
		xs, xv := randomMatrix(c.in, M*K)
		wsb, wv := randomMatrix(c.in, N*K)
		g, err := b.Plan(GemmDesc{M: M, N: N, K: K, In: c.in, Out: c.out}, 32<<20)
		if err != nil {
			t.Errorf("%v→%v: %v", c.in, c.out, err)
			continue
		}
		px, _ := d.Upload(s, xs)
		pw, _ := d.Upload(s, wsb)
		py, _ := d.Alloc(M * N * c.out.Size())
		if err := g.Run(b, s, px, pw, py, ws, 32<<20); err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		out := make([]byte, M*N*c.out.Size())
		s.DtoH(out, py)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for i := 0; i < M; i++ {
			for j := 0; j < N; j++ {
				var ref float64
				for k := 0; k < K; k++ {
					ref += xv[i*K+k] * wv[j*K+k]
				}
				var got float64
				switch c.out {
				case R32F:
					got = float64(math.Float32frombits(binary.LittleEndian.Uint32(out[4*(i*N+j):])))
				case R32I:
					got = float64(int32(binary.LittleEndian.Uint32(out[4*(i*N+j):])))
				case R16BF:
					got = float64(floatx.BF16ToF32(binary.LittleEndian.Uint16(out[2*(i*N+j):])))
				}
				num += (got - ref) * (got - ref)
				den += ref * ref
			}
		}
		nmse := num / den
		t.Logf("%v→%v: normalized MSE %.3g (workspace %d)", c.in, c.out, nmse, g.Workspace())
		if !(nmse <= c.bound) {
			t.Errorf("%v→%v: normalized MSE %.3g > %g", c.in, c.out, nmse, c.bound)
		}
		Free(px)
		Free(pw)
		Free(py)
		g.Destroy()
	}
}

// randomMatrix returns n random values encoded in t and their decoded
// float64 values.
func randomMatrix(t DataType, n int) ([]byte, []float64) {
	b := make([]byte, int64(n)*t.Size())
	v := make([]float64, n)
	for i := range v {
		f := rand.Float32()*4 - 2
		switch t {
		case R32F:
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
			v[i] = float64(f)
		case R16F:
			h := floatx.F32ToF16(f)
			binary.LittleEndian.PutUint16(b[2*i:], h)
			v[i] = float64(floatx.F16ToF32(h))
		case R16BF:
			h := floatx.F32ToBF16(f)
			binary.LittleEndian.PutUint16(b[2*i:], h)
			v[i] = float64(floatx.BF16ToF32(h))
		case R8I:
			q := int8(rand.IntN(255) - 127)
			b[i] = byte(q)
			v[i] = float64(q)
		case R8FE4M3:
			q := floatx.F32ToF8(f, floatx.E4M3FN, true)
			b[i] = q
			v[i] = float64(floatx.F8ToF32(q, floatx.E4M3FN))
		}
	}
	return b, v
}
