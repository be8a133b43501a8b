package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

var (
	nvrtcGetErrorString    func(res int32) unsafe.Pointer
	nvrtcVersion           func(major, minor *int32) int32
	nvrtcCreateProgram     func(prog *uintptr, src *byte, name *byte, nh int32, hdrs, names unsafe.Pointer) int32
	nvrtcDestroyProgram    func(prog *uintptr) int32
	nvrtcCompileProgram    func(prog uintptr, nopt int32, opts unsafe.Pointer) int32
	nvrtcGetCUBINSize      func(prog uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(prog uintptr, out *byte) int32
	nvrtcGetProgramLogSize func(prog uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(prog uintptr, out *byte) int32
)

func nvrtcSymbols() []symbol {
	return []symbol{
		{"nvrtcGetErrorString", &nvrtcGetErrorString},
		{"nvrtcVersion", &nvrtcVersion},
		{"nvrtcCreateProgram", &nvrtcCreateProgram},
		{"nvrtcDestroyProgram", &nvrtcDestroyProgram},
		{"nvrtcCompileProgram", &nvrtcCompileProgram},
		{"nvrtcGetCUBINSize", &nvrtcGetCUBINSize},
		{"nvrtcGetCUBIN", &nvrtcGetCUBIN},
		{"nvrtcGetProgramLogSize", &nvrtcGetProgramLogSize},
		{"nvrtcGetProgramLog", &nvrtcGetProgramLog},
	}
}

func nvrtcCheck(call string, res int32) error {
	if res == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s (nvrtc code %d)", call, goString(nvrtcGetErrorString(res)), res)
}

// NVRTCVersion reports the loaded NVRTC's version.
func NVRTCVersion() (major, minor int, err error) {
	if err := Load(); err != nil {
		return 0, 0, err
	}
	var ma, mi int32
	err = nvrtcCheck("nvrtcVersion", nvrtcVersion(&ma, &mi))
	return int(ma), int(mi), err
}

// CompileOptions are the NVRTC flags kiln uses for an architecture.
func CompileOptions(arch string) []string {
	return []string{"--gpu-architecture=" + arch, "--std=c++17", "-default-device", "-lineinfo"}
}

// CacheKey names a compiled module: it changes with the source, the target
// architecture, the options and the NVRTC version, so a stale CUBIN is never
// loaded.
func CacheKey(src, arch string, opts []string, nvrtcVer string) string {
	h := sha256.New()
	for _, part := range append([]string{src, arch, nvrtcVer}, opts...) {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// CacheDir is where compiled CUBINs are kept: $KILN_CUDA_CACHE, else
// os.UserCacheDir()/kiln/cuda; "" when neither is usable (no caching).
func CacheDir() string {
	if d := os.Getenv("KILN_CUDA_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "kiln", "cuda")
}

// readCache returns a cached CUBIN, or nil.
func readCache(dir, key string) []byte {
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, key+".cubin"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// writeCache stores a CUBIN atomically (errors are ignored: the cache only
// saves time).
func writeCache(dir, key string, cubin []byte) {
	if dir == "" {
		return
	}
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	f, err := os.CreateTemp(dir, key+".*.tmp")
	if err != nil {
		return
	}
	_, werr := f.Write(cubin)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if os.Rename(f.Name(), filepath.Join(dir, key+".cubin")) != nil {
		os.Remove(f.Name())
	}
}

// Compile turns CUDA C source into a CUBIN for arch with NVRTC, using the
// on-disk cache. name is used in error messages.
func Compile(name, src, arch string) ([]byte, error) {
	ma, mi, err := NVRTCVersion()
	if err != nil {
		return nil, err
	}
	opts := CompileOptions(arch)
	key := CacheKey(src, arch, opts, fmt.Sprintf("%d.%d", ma, mi))
	dir := CacheDir()
	if b := readCache(dir, key); b != nil {
		return b, nil
	}
	var prog uintptr
	csrc, cname := cString(src), cString(name)
	if err := nvrtcCheck("nvrtcCreateProgram", nvrtcCreateProgram(&prog, &csrc[0], &cname[0], 0, nil, nil)); err != nil {
		return nil, err
	}
	defer nvrtcDestroyProgram(&prog)
	copts := make([][]byte, len(opts))
	optPtrs := make([]*byte, len(opts))
	for i, o := range opts {
		copts[i] = cString(o)
		optPtrs[i] = &copts[i][0]
	}
	res := nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&optPtrs[0]))
	if res != 0 {
		var n uint64
		log := ""
		if nvrtcGetProgramLogSize(prog, &n) == 0 && n > 1 {
			b := make([]byte, n)
			if nvrtcGetProgramLog(prog, &b[0]) == 0 {
				log = strings.TrimRight(string(b), "\x00\n")
			}
		}
		return nil, fmt.Errorf("compiling %s for %s: %w\n%s", name, arch, nvrtcCheck("nvrtcCompileProgram", res), log)
	}
	var n uint64
	if err := nvrtcCheck("nvrtcGetCUBINSize", nvrtcGetCUBINSize(prog, &n)); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("compiling %s: NVRTC produced no CUBIN for %s", name, arch)
	}
	cubin := make([]byte, n)
	if err := nvrtcCheck("nvrtcGetCUBIN", nvrtcGetCUBIN(prog, &cubin[0])); err != nil {
		return nil, err
	}
	writeCache(dir, key, cubin)
	return cubin, nil
}

// Module compiles (or takes from the cache) src for this device and loads
// it once per device; the device must be bound.
func (d *Device) Module(name, src string) (*Module, error) {
	sum := sha256.Sum256([]byte(src))
	key := hex.EncodeToString(sum[:8]) + name
	d.modMu.Lock()
	defer d.modMu.Unlock()
	if m := d.modules[key]; m != nil {
		return m, nil
	}
	cubin, err := Compile(name, src, d.Arch())
	if err != nil {
		return nil, err
	}
	m, err := LoadModule(cubin)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", name, err)
	}
	d.modules[key] = m
	return m, nil
}
