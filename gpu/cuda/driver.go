package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// DevPtr is a device address (CUdeviceptr).
type DevPtr uint64

// Driver API entry points, bound by Load. CUresult is an int32.
var (
	cuInit                func(flags uint32) int32
	cuGetErrorString      func(res int32, str *unsafe.Pointer) int32
	cuGetErrorName        func(res int32, str *unsafe.Pointer) int32
	cuDeviceGetCount      func(n *int32) int32
	cuDeviceGet           func(dev *int32, ordinal int32) int32
	cuDeviceGetName       func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute  func(v *int32, attr int32, dev int32) int32
	cuDevicePrimaryCtxRet func(ctx *uintptr, dev int32) int32
	cuCtxSetCurrent       func(ctx uintptr) int32
	cuStreamCreate        func(s *uintptr, flags uint32) int32
	cuStreamSynchronize   func(s uintptr) int32
	cuStreamDestroy       func(s uintptr) int32
	cuMemAlloc            func(p *DevPtr, n uint64) int32
	cuMemFree             func(p DevPtr) int32
	cuMemcpyHtoDAsync     func(dst DevPtr, src unsafe.Pointer, n uint64, s uintptr) int32
	cuMemcpyDtoHAsync     func(dst unsafe.Pointer, src DevPtr, n uint64, s uintptr) int32
	cuMemcpyDtoDAsync     func(dst, src DevPtr, n uint64, s uintptr) int32
	cuMemsetD8Async       func(dst DevPtr, v uint8, n uint64, s uintptr) int32
	cuModuleLoadData      func(mod *uintptr, image unsafe.Pointer) int32
	cuModuleGetFunction   func(f *uintptr, mod uintptr, name *byte) int32
	cuLaunchKernel        func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, s uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuFuncSetAttribute    func(f uintptr, attr int32, v int32) int32
	cuEventCreate         func(e *uintptr, flags uint32) int32
	cuEventRecord         func(e uintptr, s uintptr) int32
	cuEventSynchronize    func(e uintptr) int32
	cuEventDestroy        func(e uintptr) int32
	cuEventElapsedTime    func(ms *float32, start, end uintptr) int32
	cuMemHostRegister     func(p unsafe.Pointer, n uint64, flags uint32) int32
	cuMemHostUnregister   func(p unsafe.Pointer) int32
)

func driverSymbols() []symbol {
	return []symbol{
		{"cuInit", &cuInit},
		{"cuGetErrorString", &cuGetErrorString},
		{"cuGetErrorName", &cuGetErrorName},
		{"cuDeviceGetCount", &cuDeviceGetCount},
		{"cuDeviceGet", &cuDeviceGet},
		{"cuDeviceGetName", &cuDeviceGetName},
		{"cuDeviceGetAttribute", &cuDeviceGetAttribute},
		{"cuDevicePrimaryCtxRetain", &cuDevicePrimaryCtxRet},
		{"cuCtxSetCurrent", &cuCtxSetCurrent},
		{"cuStreamCreate", &cuStreamCreate},
		{"cuStreamSynchronize", &cuStreamSynchronize},
		{"cuStreamDestroy_v2", &cuStreamDestroy},
		{"cuMemAlloc_v2", &cuMemAlloc},
		{"cuMemFree_v2", &cuMemFree},
		{"cuMemcpyHtoDAsync_v2", &cuMemcpyHtoDAsync},
		{"cuMemcpyDtoHAsync_v2", &cuMemcpyDtoHAsync},
		{"cuMemcpyDtoDAsync_v2", &cuMemcpyDtoDAsync},
		{"cuMemsetD8Async", &cuMemsetD8Async},
		{"cuModuleLoadData", &cuModuleLoadData},
		{"cuModuleGetFunction", &cuModuleGetFunction},
		{"cuLaunchKernel", &cuLaunchKernel},
		{"cuFuncSetAttribute", &cuFuncSetAttribute},
		{"cuEventCreate", &cuEventCreate},
		{"cuEventRecord", &cuEventRecord},
		{"cuEventSynchronize", &cuEventSynchronize},
		{"cuEventDestroy_v2", &cuEventDestroy},
		{"cuEventElapsedTime_v2", &cuEventElapsedTime},
		{"cuMemHostRegister_v2", &cuMemHostRegister},
		{"cuMemHostUnregister", &cuMemHostUnregister},
	}
}

// Error is a failed CUDA driver call.
type Error struct {
	Call string
	Code int32
	Name string // e.g. CUDA_ERROR_OUT_OF_MEMORY
	Msg  string // cuGetErrorString's text
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%s, code %d)", e.Call, e.Msg, e.Name, e.Code)
}

// check turns a CUresult into an error with the driver's own text.
func check(call string, res int32) error {
	if res == 0 {
		return nil
	}
	e := &Error{Call: call, Code: res, Name: "CUDA_ERROR_UNKNOWN", Msg: "unknown error"}
	if cuGetErrorString != nil {
		var p unsafe.Pointer
		if cuGetErrorString(res, &p) == 0 && p != nil {
			e.Msg = goString(p)
		}
		if cuGetErrorName(res, &p) == 0 && p != nil {
			e.Name = goString(p)
		}
	}
	return e
}

// Device is one GPU with its primary context.
type Device struct {
	Ordinal int
	Name    string
	Major   int // compute capability
	Minor   int
	SMs     int
	ctx     uintptr
	modMu   sync.Mutex
	modules map[string]*Module // by source hash
}

var (
	devMu   sync.Mutex
	devices = map[int]*Device{}
)

// Open returns device ordinal (shared, opened once).
func Open(ordinal int) (*Device, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	devMu.Lock()
	defer devMu.Unlock()
	if d := devices[ordinal]; d != nil {
		return d, nil
	}
	var dev int32
	if err := check("cuDeviceGet", cuDeviceGet(&dev, int32(ordinal))); err != nil {
		return nil, err
	}
	d := &Device{Ordinal: ordinal, modules: map[string]*Module{}}
	name := make([]byte, 256)
	if err := check("cuDeviceGetName", cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
		return nil, err
	}
	d.Name = goString(unsafe.Pointer(&name[0]))
	var v int32
	for _, a := range []struct {
		attr int32
		dst  *int
	}{{75, &d.Major}, {76, &d.Minor}, {16, &d.SMs}} {
		if err := check("cuDeviceGetAttribute", cuDeviceGetAttribute(&v, a.attr, dev)); err != nil {
			return nil, err
		}
		*a.dst = int(v)
	}
	if err := check("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRet(&d.ctx, dev)); err != nil {
		return nil, err
	}
	devices[ordinal] = d
	return d, nil
}

// Arch is the NVRTC target for the device: sm_90a on Hopper (wgmma and
// setmaxnreg need the "a" variant), sm_XY elsewhere.
func (d *Device) Arch() string {
	if d.Major == 9 && d.Minor == 0 {
		return "sm_90a"
	}
	return fmt.Sprintf("sm_%d%d", d.Major, d.Minor)
}

// Bind pins the calling goroutine to its OS thread and makes the device's
// context current there (the driver's current context is per thread).
// Call the returned function when done.
func (d *Device) Bind() (unbind func(), err error) {
	runtime.LockOSThread()
	if err := check("cuCtxSetCurrent", cuCtxSetCurrent(d.ctx)); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return runtime.UnlockOSThread, nil
}

// Stream is an ordered queue of device work.
type Stream struct {
	h   uintptr
	pdl bool // launches are programmatic dependents (pdl.go)
}

// NewStream makes a non-blocking stream (the device must be bound).
func (d *Device) NewStream() (*Stream, error) {
	s := &Stream{}
	if err := check("cuStreamCreate", cuStreamCreate(&s.h, 1)); err != nil {
		return nil, err
	}
	return s, nil
}

// Sync waits for the stream's work.
func (s *Stream) Sync() error { return check("cuStreamSynchronize", cuStreamSynchronize(s.h)) }

// Destroy releases the stream.
func (s *Stream) Destroy() error { return check("cuStreamDestroy", cuStreamDestroy(s.h)) }

// Handle is the raw CUstream.
func (s *Stream) Handle() uintptr { return s.h }

// Alloc allocates n bytes of device memory (n > 0).
func (d *Device) Alloc(n int64) (DevPtr, error) {
	if n <= 0 {
		n = 1
	}
	var p DevPtr
	if err := check(fmt.Sprintf("cuMemAlloc(%d bytes)", n), cuMemAlloc(&p, uint64(n))); err != nil {
		return 0, err
	}
	return p, nil
}

// Free releases device memory.
func Free(p DevPtr) error {
	if p == 0 {
		return nil
	}
	return check("cuMemFree", cuMemFree(p))
}

// HtoD copies host bytes to the device on s (src must stay unchanged until
// the stream reaches the copy).
func (s *Stream) HtoD(dst DevPtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return check("cuMemcpyHtoDAsync", cuMemcpyHtoDAsync(dst, unsafe.Pointer(&src[0]), uint64(len(src)), s.h))
}

// DtoH copies device bytes to host memory on s (valid after Sync).
func (s *Stream) DtoH(dst []byte, src DevPtr) error {
	if len(dst) == 0 {
		return nil
	}
	return check("cuMemcpyDtoHAsync", cuMemcpyDtoHAsync(unsafe.Pointer(&dst[0]), src, uint64(len(dst)), s.h))
}

// DtoD copies n bytes between device buffers.
func (s *Stream) DtoD(dst, src DevPtr, n int64) error {
	if n == 0 {
		return nil
	}
	return check("cuMemcpyDtoDAsync", cuMemcpyDtoDAsync(dst, src, uint64(n), s.h))
}

// Memset fills n bytes with v.
func (s *Stream) Memset(dst DevPtr, v byte, n int64) error {
	if n == 0 {
		return nil
	}
	return check("cuMemsetD8Async", cuMemsetD8Async(dst, v, uint64(n), s.h))
}

// Upload allocates device memory for b and copies it synchronously.
func (d *Device) Upload(s *Stream, b []byte) (DevPtr, error) {
	p, err := d.Alloc(int64(len(b)))
	if err != nil {
		return 0, err
	}
	if err := s.HtoD(p, b); err != nil {
		return 0, err
	}
	return p, s.Sync()
}

// PinHost page-locks host memory so copies from it run at full speed and
// truly asynchronously. Unpin with UnpinHost.
func PinHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return check("cuMemHostRegister", cuMemHostRegister(unsafe.Pointer(&b[0]), uint64(len(b)), 1))
}

// UnpinHost undoes PinHost.
func UnpinHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return check("cuMemHostUnregister", cuMemHostUnregister(unsafe.Pointer(&b[0])))
}

// Event marks a point in a stream, for timing.
type Event struct{ h uintptr }

// NewEvent makes a timing event.
func NewEvent() (*Event, error) {
	e := &Event{}
	return e, check("cuEventCreate", cuEventCreate(&e.h, 0))
}

// Record places the event on s.
func (e *Event) Record(s *Stream) error { return check("cuEventRecord", cuEventRecord(e.h, s.h)) }

// Sync waits for the event.
func (e *Event) Sync() error { return check("cuEventSynchronize", cuEventSynchronize(e.h)) }

// Destroy releases the event (once; later calls do nothing). Events
// recorded on a stream must be complete (the stream synchronized) first.
func (e *Event) Destroy() error {
	if e == nil || e.h == 0 {
		return nil
	}
	h := e.h
	e.h = 0
	return check("cuEventDestroy", cuEventDestroy(h))
}

// Elapsed returns the milliseconds from start to e (both recorded and
// complete).
func (e *Event) Elapsed(start *Event) (float32, error) {
	var ms float32
	return ms, check("cuEventElapsedTime", cuEventElapsedTime(&ms, start.h, e.h))
}

// Module is a loaded CUBIN.
type Module struct {
	h     uintptr
	fnMu  sync.Mutex
	funcs map[string]*Function
}

// Function is a kernel entry point.
type Function struct {
	h         uintptr
	Name      string
	attrMu    sync.Mutex
	maxShared int // dynamic shared memory allowed so far (SetMaxDynamicShared)
}

// LoadModule loads a CUBIN image (the device must be bound).
func LoadModule(image []byte) (*Module, error) {
	m := &Module{funcs: map[string]*Function{}}
	img := append(image[:len(image):len(image)], 0) // keep a copy alive
	if err := check("cuModuleLoadData", cuModuleLoadData(&m.h, unsafe.Pointer(&img[0]))); err != nil {
		return nil, err
	}
	runtime.KeepAlive(img)
	return m, nil
}

// Func looks up an extern "C" kernel by name.
func (m *Module) Func(name string) (*Function, error) {
	m.fnMu.Lock()
	defer m.fnMu.Unlock()
	if f := m.funcs[name]; f != nil {
		return f, nil
	}
	f := &Function{Name: name}
	cn := cString(name)
	if err := check("cuModuleGetFunction("+name+")", cuModuleGetFunction(&f.h, m.h, &cn[0])); err != nil {
		return nil, err
	}
	m.funcs[name] = f
	return f, nil
}

// funcAttrMaxDynamicShared is CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
// (cuda.h's CUfunction_attribute).
const funcAttrMaxDynamicShared = 8

// SetMaxDynamicShared lets launches of f ask for up to n bytes of dynamic
// shared memory (above the default 48 KB a block needs this first).
func (f *Function) SetMaxDynamicShared(n int) error {
	f.attrMu.Lock()
	defer f.attrMu.Unlock()
	if f.maxShared >= n {
		return nil
	}
	if err := check("cuFuncSetAttribute("+f.Name+")", cuFuncSetAttribute(f.h, funcAttrMaxDynamicShared, int32(n))); err != nil {
		return err
	}
	f.maxShared = n
	return nil
}

// Launch runs f on s with a grid of blocks and the packed arguments.
func (f *Function) Launch(s *Stream, grid, block [3]uint32, shmem uint32, a *Args) error {
	for i := range grid {
		if grid[i] == 0 {
			return nil // empty problem
		}
	}
	ptrs := a.pointers()
	var pp unsafe.Pointer
	if len(ptrs) > 0 {
		pp = unsafe.Pointer(&ptrs[0])
	}
	var err error
	if s.pdl {
		err = f.launchPDL(s, grid, block, shmem, pp)
	} else {
		err = check("cuLaunchKernel("+f.Name+")", cuLaunchKernel(f.h, grid[0], grid[1], grid[2], block[0], block[1], block[2], shmem, s.h, pp, nil))
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(ptrs)
	return err
}
