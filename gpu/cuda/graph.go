package cuda

import (
	"fmt"
	"unsafe"
)

// Page-locked host memory and CUDA graphs (stream capture). Signatures and
// enum values follow cuda.h (CUDA 13): cuMemHostAlloc(void **pp, size_t
// bytesize, unsigned int Flags), cuMemFreeHost(void *p),
// cuStreamBeginCapture_v2(CUstream, CUstreamCaptureMode),
// cuStreamEndCapture(CUstream, CUgraph *), cuGraphInstantiateWithFlags(
// CUgraphExec *, CUgraph, unsigned long long), cuGraphLaunch(CUgraphExec,
// CUstream), cuGraphExecDestroy(CUgraphExec), cuGraphDestroy(CUgraph).
var (
	cuMemHostAlloc              func(pp *unsafe.Pointer, n uint64, flags uint32) int32
	cuMemFreeHost               func(p unsafe.Pointer) int32
	cuStreamBeginCapture        func(s uintptr, mode int32) int32
	cuStreamEndCapture          func(s uintptr, g *uintptr) int32
	cuGraphInstantiateWithFlags func(exec *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch               func(exec uintptr, s uintptr) int32
	cuGraphExecDestroy          func(exec uintptr) int32
	cuGraphDestroy              func(g uintptr) int32
)

func graphSymbols() []symbol {
	return []symbol{
		{"cuMemHostAlloc", &cuMemHostAlloc},
		{"cuMemFreeHost", &cuMemFreeHost},
		{"cuStreamBeginCapture_v2", &cuStreamBeginCapture},
		{"cuStreamEndCapture", &cuStreamEndCapture},
		{"cuGraphInstantiateWithFlags", &cuGraphInstantiateWithFlags},
		{"cuGraphLaunch", &cuGraphLaunch},
		{"cuGraphExecDestroy", &cuGraphExecDestroy},
		{"cuGraphDestroy", &cuGraphDestroy},
	}
}

const (
	// memHostAllocPortable (CU_MEMHOSTALLOC_PORTABLE): the memory is pinned
	// for every context, not only the current one.
	memHostAllocPortable = 0x01
	// captureModeRelaxed (CU_STREAM_CAPTURE_MODE_RELAXED = 2; GLOBAL is 0,
	// THREAD_LOCAL 1): kiln's captures span several engine steps, each of
	// which binds the device on whatever OS thread runs it, and allocate
	// between launches; the stricter modes would refuse both.
	captureModeRelaxed = 2
)

// HostAlloc returns n bytes of page-locked host memory (cuMemHostAlloc):
// the GPU copies from and to it by DMA at full bus speed, and an async copy
// from it is truly asynchronous (and can be captured in a graph). It is not
// Go memory: release it with FreeHost, and never after that.
func HostAlloc(n int) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuMemHostAlloc: size %d", n)
	}
	if err := Load(); err != nil {
		return nil, err
	}
	var p unsafe.Pointer
	if err := check(fmt.Sprintf("cuMemHostAlloc(%d bytes)", n), cuMemHostAlloc(&p, uint64(n), memHostAllocPortable)); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), n), nil
}

// FreeHost releases memory from HostAlloc (a nil or empty slice is a no-op).
func FreeHost(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return check("cuMemFreeHost", cuMemFreeHost(unsafe.Pointer(unsafe.SliceData(b))))
}

// BeginCapture puts s in capture mode (relaxed): work queued on s is
// recorded into a graph instead of running, until EndCapture.
func (s *Stream) BeginCapture() error {
	return check("cuStreamBeginCapture", cuStreamBeginCapture(s.h, captureModeRelaxed))
}

// EndCapture ends s's capture and instantiates the recorded graph. The
// stream leaves capture mode also when this fails (a capture invalidated by
// an unsupported call ends with the error here).
func (s *Stream) EndCapture() (*Graph, error) {
	var g uintptr
	if err := check("cuStreamEndCapture", cuStreamEndCapture(s.h, &g)); err != nil {
		if g != 0 {
			cuGraphDestroy(g)
		}
		return nil, err
	}
	if g == 0 {
		return nil, fmt.Errorf("cuStreamEndCapture: no graph")
	}
	gr := &Graph{g: g}
	if err := check("cuGraphInstantiateWithFlags", cuGraphInstantiateWithFlags(&gr.exec, g, 0)); err != nil {
		cuGraphDestroy(g)
		return nil, err
	}
	return gr, nil
}

// Graph is an instantiated CUDA graph.
type Graph struct{ g, exec uintptr }

// Launch replays the graph on s.
func (gr *Graph) Launch(s *Stream) error {
	return check("cuGraphLaunch", cuGraphLaunch(gr.exec, s.h))
}

// Destroy frees the graph and its executable form (idempotent).
func (gr *Graph) Destroy() error {
	var err error
	if gr.exec != 0 {
		err = check("cuGraphExecDestroy", cuGraphExecDestroy(gr.exec))
		gr.exec = 0
	}
	if gr.g != 0 {
		if e := check("cuGraphDestroy", cuGraphDestroy(gr.g)); err == nil {
			err = e
		}
		gr.g = 0
	}
	return err
}
