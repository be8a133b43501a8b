// Package cuda is kiln's binding to NVIDIA's driver API, NVRTC and cuBLASLt,
// loaded at run time with purego: kiln builds without cgo and without CUDA,
// and a machine without the libraries (or without a GPU) gets ErrNoDevice
// with the reason, so callers fall back to the CPU.
package cuda

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrNoDevice is wrapped by every error that means "CUDA cannot be used on
// this machine" (library missing, no GPU, driver too old).
var ErrNoDevice = errors.New("no CUDA device")

// library names tried in order; the first that opens wins.
var (
	driverLibs = []string{"libcuda.so.1", "libcuda.so"}
	nvrtcLibs  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}
	ltLibs     = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}
)

// openFirst dlopens the first library of names that loads.
func openFirst(names []string) (uintptr, string, error) {
	var errs []string
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, n, nil
		}
		errs = append(errs, err.Error())
	}
	return 0, "", fmt.Errorf("%w: cannot load %s (%s)", ErrNoDevice, strings.Join(names, " or "), strings.Join(errs, "; "))
}

// symbol binds one C function to fptr (a pointer to a func variable).
type symbol struct {
	name string
	fptr any
}

// bind resolves every symbol of a library, reporting all missing ones.
func bind(lib uintptr, libName string, syms []symbol) error {
	var missing []string
	for _, s := range syms {
		addr, err := purego.Dlsym(lib, s.name)
		if err != nil || addr == 0 {
			missing = append(missing, s.name)
			continue
		}
		purego.RegisterFunc(s.fptr, addr)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s lacks %s (driver or toolkit too old?)", ErrNoDevice, libName, strings.Join(missing, ", "))
	}
	return nil
}

var (
	loadOnce sync.Once
	loadErr  error
	// Libs names the libraries that were loaded (for logs and reports).
	Libs []string
)

// Load opens the three libraries and initializes the driver once. It
// returns an error wrapping ErrNoDevice when CUDA is unusable here.
func Load() error {
	loadOnce.Do(func() { loadErr = load() })
	return loadErr
}

func load() error {
	h, name, err := openFirst(driverLibs)
	if err != nil {
		return err
	}
	if err := bind(h, name, append(driverSymbols(), graphSymbols()...)); err != nil {
		return err
	}
	bindOptional(h)
	Libs = append(Libs, name)
	if err := check("cuInit", cuInit(0)); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	var n int32
	if err := check("cuDeviceGetCount", cuDeviceGetCount(&n)); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDevice, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the driver reports no GPU", ErrNoDevice)
	}
	h, name, err = openFirst(nvrtcLibs)
	if err != nil {
		return err
	}
	if err := bind(h, name, nvrtcSymbols()); err != nil {
		return err
	}
	Libs = append(Libs, name)
	h, name, err = openFirst(ltLibs)
	if err != nil {
		return err
	}
	if err := bind(h, name, ltSymbols()); err != nil {
		return err
	}
	Libs = append(Libs, name)
	return nil
}

// cString returns s as a NUL-terminated byte slice (keep it alive while C
// reads it).
func cString(s string) []byte { return append([]byte(s), 0) }

// goString copies a C string.
func goString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(p), n))
}
