package cuda

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnml/kiln/gpu/cuda/kernels"
)

func TestOpenFirstReportsNoDevice(t *testing.T) {
	_, _, err := openFirst([]string{"libkiln-not-a-cuda-library.so.1", "libkiln-nope.so"})
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("got %v, want an error wrapping ErrNoDevice", err)
	}
	if !strings.Contains(err.Error(), "libkiln-not-a-cuda-library.so.1") {
		t.Errorf("error does not name the library: %v", err)
	}
}

func TestBindReportsEveryMissingSymbol(t *testing.T) {
	// libc is always there; these symbols are not.
	h, name, err := openFirst([]string{"libc.so.6"})
	if err != nil {
		t.Skip("no libc.so.6 to test symbol binding against:", err)
	}
	var f1, f2 func() int32
	err = bind(h, name, []symbol{{"kiln_no_such_fn_a", &f1}, {"kiln_no_such_fn_b", &f2}})
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "kiln_no_such_fn_a") || !strings.Contains(err.Error(), "kiln_no_such_fn_b") {
		t.Fatalf("got %v", err)
	}
}

// On a machine without CUDA (CI), Load must fail with ErrNoDevice, never
// panic; on a GPU machine it must succeed.
func TestLoadErrorIsNoDevice(t *testing.T) {
	err := Load()
	if err == nil {
		t.Logf("CUDA loaded: %v", Libs)
		return
	}
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Load error %v does not wrap ErrNoDevice", err)
	}
	if _, err := Open(0); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Open without CUDA: %v", err)
	}
	if _, err := NewBLAS(); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("NewBLAS without CUDA: %v", err)
	}
	if _, _, err := NVRTCVersion(); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("NVRTCVersion without CUDA: %v", err)
	}
	t.Logf("as expected without a GPU: %v", err)
}

func TestCheckFormatsWithoutDriver(t *testing.T) {
	if check("cuX", 0) != nil {
		t.Fatal("success must be nil")
	}
	var e *Error
	if err := check("cuMemAlloc", 2); !errors.As(err, &e) || e.Code != 2 || !strings.Contains(err.Error(), "cuMemAlloc") {
		t.Fatalf("got %v", err)
	}
}

func TestCacheKey(t *testing.T) {
	base := CacheKey("src", "sm_90a", []string{"-a"}, "13.0")
	if base != CacheKey("src", "sm_90a", []string{"-a"}, "13.0") {
		t.Fatal("key is not deterministic")
	}
	for _, k := range []string{
		CacheKey("src2", "sm_90a", []string{"-a"}, "13.0"),
		CacheKey("src", "sm_89", []string{"-a"}, "13.0"),
		CacheKey("src", "sm_90a", []string{"-b"}, "13.0"),
		CacheKey("src", "sm_90a", []string{"-a"}, "12.8"),
		CacheKey("sr", "csm_90a", []string{"-a"}, "13.0"), // no ambiguity from concatenation
	} {
		if k == base {
			t.Errorf("key collision: %s", k)
		}
	}
	if len(base) != 32 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Errorf("key %q is not 32 hex digits", base)
	}
}

func TestCacheRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kiln", "cuda")
	if readCache(dir, "k") != nil {
		t.Fatal("empty cache returned data")
	}
	writeCache(dir, "k", []byte("cubin bytes"))
	if got := readCache(dir, "k"); string(got) != "cubin bytes" {
		t.Fatalf("got %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	writeCache("", "k", []byte("x")) // no cache dir: a no-op
	t.Setenv("KILN_CUDA_CACHE", dir)
	if CacheDir() != dir {
		t.Errorf("KILN_CUDA_CACHE not honoured: %s", CacheDir())
	}
}

func TestArgsPacking(t *testing.T) {
	a := NewArgs(DevPtr(0xdeadbeef00), 7, int32(-1), uint32(5), float32(1.5), int64(-2), 2.5)
	want := []uint64{0xdeadbeef00, 7, 0xffffffff, 5, uint64(math.Float32bits(1.5)), 0xfffffffffffffffe, math.Float64bits(2.5)}
	if a.Len() != len(want) {
		t.Fatalf("len %d", a.Len())
	}
	for i, w := range want {
		if a.Slot(i) != w {
			t.Errorf("slot %d = %#x, want %#x", i, a.Slot(i), w)
		}
	}
	ptrs := a.pointers()
	if len(ptrs) != len(want) || *(*int32)(ptrs[2]) != -1 || *(*float32)(ptrs[4]) != 1.5 {
		t.Error("pointers do not address the slots")
	}
	for _, bad := range []func(){
		func() { NewArgs("string") },
		func() { NewArgs(1 << 40) },
		func() {
			b := &Args{}
			for i := 0; i <= MaxArgs; i++ {
				b.Add(1)
			}
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("expected a panic")
				}
			}()
			bad()
		}()
	}
}

// The embedded source declares every entry point the backend launches.
func TestKernelSourceEmbedded(t *testing.T) {
	if len(kernels.Source) < 1000 {
		t.Fatalf("kernel source is %d bytes", len(kernels.Source))
	}
	re := regexp.MustCompile(`extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(|^(?:IM2COL|EPI|MAXPOOL|BINARY|COPY2D|TRANSPOSE)\((\w+),`)
	names := map[string]bool{}
	for _, line := range strings.Split(kernels.Source, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			names[m[1]+m[2]] = true
		}
	}
	for _, n := range []string{"im2col_b4", "im2col_b2", "im2col_b1", "im2col_zp", "epi_i32_u8", "maxpool_u8", "maxpool_f16", "maxpool_e4m3", "avgpool_any", "gavgpool_16", "gavgpool_nhwc", "gpool_nhwc", "bias_act_nchw", "bias_act_nchw16x8", "quant_f32_u8", "dequant_u8_f32", "epi_f32_f32", "epi_i32_i8", "epi_f32_e4m3", "epi_i32_16",
		"act_f32", "act_f16", "relu_i8", "binary_f32", "binary_f16", "binary_bf16", "copy2d_b1", "copy2d_b4", "copy2d_b16",
		"transpose_b1", "transpose_b2", "transpose_b4", "transpose_b8", "maxpool_f32", "maxpool_i8", "avgpool_f32", "gavgpool_f32",
		"softmax_f32", "layernorm_f32", "quant_f32_i8", "quant_f32_e4m3", "dequant_i8_f32", "dequant_e4m3_f32", "cast_f32_16", "cast_16_f32"} {
		if !names[n] {
			t.Errorf("kernel %s is not in kiln.cu", n)
		}
	}
	if strings.Contains(kernels.Source, "#include") || strings.Contains(kernels.IGemm, "#include") || strings.Contains(kernels.WGemm, "#include") {
		t.Error("kiln.cu, igemm.cu and wgmma.cu must not include headers (NVRTC compiles them with none)")
	}
	if wg := regexp.MustCompile(`(?m)^IGW\((\w+),`).FindAllStringSubmatch(kernels.WGemm, -1); len(wg) != 14 {
		t.Errorf("wgmma.cu declares %d kernels, want 14", len(wg))
	}
	ig := regexp.MustCompile(`(?m)^IGEMM\((\w+),`).FindAllStringSubmatch(kernels.IGemm, -1)
	if len(ig) < 15 {
		t.Errorf("igemm.cu declares %d kernels, want 15", len(ig))
	}
}

func TestArch(t *testing.T) {
	for _, c := range []struct {
		maj, min int
		want     string
	}{{9, 0, "sm_90a"}, {8, 9, "sm_89"}, {10, 0, "sm_100"}} {
		d := &Device{Major: c.maj, Minor: c.min}
		if d.Arch() != c.want {
			t.Errorf("%d.%d: %s", c.maj, c.min, d.Arch())
		}
	}
}
