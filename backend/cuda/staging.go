package cudabackend

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// Host-device copies go through page-locked (pinned) memory: from pageable
// Go memory the driver copies through its own small staging buffers at
// about 9 GB/s and the "async" copy blocks the host; from pinned memory the
// GPU's copy engine reads the host by DMA at bus speed while the host goes
// on. Each execution context owns one pinned staging buffer: a step copies
// its host inputs into it (in parallel, see copyPar) and queues the DMA;
// outputs the host reads come back into it and are copied to their Go
// tensors after the stream is synchronized. Callers that bind inputs
// allocated with HostAlloc skip the staging copy (the DMA reads their
// buffer directly). Inside CUDA graphs, whose copies read the host address
// captured, that holds for the inputs of a segment's first step (queued
// ahead of the graph: earlyCopy in graphs.go); later steps' host inputs
// are staged.
//
// KILN_CUDA_PINNED=0 (or SetPinned(false)) turns staging off: copies then
// go from and to Go memory directly, as before, and CUDA graphs are off too
// (a graph cannot capture a copy from pageable memory).

var pinnedOn atomic.Bool

func init() { pinnedOn.Store(os.Getenv("KILN_CUDA_PINNED") != "0") }

// SetPinned turns pinned staging on or off for the steps that follow
// (change it between Executes, not during one).
func SetPinned(on bool) { pinnedOn.Store(on) }

// Pinned reports whether pinned staging is on.
func Pinned() bool { return pinnedOn.Load() }

// user-allocated pinned buffers, sorted by start address
var (
	pinMu   sync.RWMutex
	pinned  []pinRange
	pinSize atomic.Int64 // total bytes, so the common case skips the lock
)

type pinRange struct{ start, end uintptr }

// HostAlloc returns n bytes of page-locked host memory for tensors the
// caller binds as engine inputs (or reads as outputs): the CUDA backend
// copies them by DMA without staging. Release it with HostFree.
func HostAlloc(n int) ([]byte, error) {
	g, err := getDevice()
	if err != nil {
		return nil, err
	}
	unbind, err := g.d.Bind() // cuMemHostAlloc needs a current context
	if err != nil {
		return nil, err
	}
	b, err := cuda.HostAlloc(n)
	unbind()
	if err != nil {
		return nil, err
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	pinMu.Lock()
	i := sort.Search(len(pinned), func(i int) bool { return pinned[i].start > start })
	pinned = append(pinned, pinRange{})
	copy(pinned[i+1:], pinned[i:])
	pinned[i] = pinRange{start, start + uintptr(n)}
	pinSize.Add(int64(n))
	pinMu.Unlock()
	return b, nil
}

// HostFree releases a buffer of HostAlloc (the whole buffer, as returned).
func HostFree(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	pinMu.Lock()
	found := false
	for i, r := range pinned {
		if r.start == start {
			pinned = append(pinned[:i], pinned[i+1:]...)
			pinSize.Add(-int64(r.end - r.start))
			found = true
			break
		}
	}
	pinMu.Unlock()
	if !found {
		return fmt.Errorf("HostFree: %d bytes at %#x were not allocated by HostAlloc", len(b), start)
	}
	g, err := getDevice()
	if err != nil {
		return err
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return err
	}
	defer unbind()
	return cuda.FreeHost(b)
}

// NewPinnedTensor makes a tensor whose data is HostAlloc'd pinned memory
// (free it with HostFree(t.Data)).
func NewPinnedTensor(dt ir.DType, dims []int64) (*ir.Tensor, error) {
	n, err := ir.NumElements(dims)
	if err != nil {
		return nil, err
	}
	size := dt.ByteSize(n)
	b, err := HostAlloc(int(max(size, 1)))
	if err != nil {
		return nil, err
	}
	return &ir.Tensor{DType: dt, Dims: append([]int64{}, dims...), Data: b[:size]}, nil
}

// isPinned reports whether b lies inside one HostAlloc'd buffer.
func isPinned(b []byte) bool {
	if len(b) == 0 || pinSize.Load() == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))
	pinMu.RLock()
	defer pinMu.RUnlock()
	i := sort.Search(len(pinned), func(i int) bool { return pinned[i].start > start }) - 1
	return i >= 0 && end <= pinned[i].end
}

// hostCopy is an output waiting in the staging buffer for the stream.
type hostCopy struct {
	dst []byte
	off int
}

// stageAt is a staged copy recorded for graph replay: argument i of the
// step (an input or an output), bytes [off, off+n) of the staging buffer.
type stageAt struct{ i, off, n int }

// stageTake returns the offset of n free bytes of the staging buffer,
// growing it (after a sync) when full.
func (st *execState) stageTake(n int) (int, error) {
	off := st.stageUsed
	end := off + int(alignUp(int64(n)))
	if end > len(st.stage) {
		if err := st.s.Sync(); err != nil { // queued copies still read it
			return 0, err
		}
		st.flushOuts()
		size := max(end, 2*len(st.stage), 1<<20)
		if st.stage != nil {
			if err := cuda.FreeHost(st.stage); err != nil {
				return 0, err
			}
			st.stage = nil
			st.allocGen++
		}
		b, err := cuda.HostAlloc(size + size/4)
		if err != nil {
			return 0, err
		}
		st.stage, off, end = b, 0, int(alignUp(int64(n)))
	}
	st.stageUsed = end
	return off, nil
}

// toDevice queues the copy of host tensor t (argument i of the step) to
// device address p.
func (st *execState) toDevice(p cuda.DevPtr, t *ir.Tensor) error {
	b := t.Data
	capturing := st.seg.mode == modeCapture
	early := st.pinned && st.earlyCopyOf(b) // graphs.go: the graph leaves it out
	if early && st.twin {
		i := argIndex(st.curIn, t)
		if i < 0 {
			return fmt.Errorf("a host-copied tensor is not an input of the step")
		}
		st.rec.early = append(st.rec.early, earlyCopy{i, len(b), p})
		return nil
	}
	if !st.pinned || early || (!capturing && isPinned(b)) {
		if err := st.copying(phH2D); err != nil {
			return err
		}
		return st.s.HtoD(p, b)
	}
	off, err := st.stageTake(len(b))
	if err != nil {
		return err
	}
	dst := st.stage[off : off+len(b)]
	if st.twin { // the capture pass: the eager pass has staged the data
		i := argIndex(st.curIn, t)
		if i < 0 {
			return fmt.Errorf("a staged tensor is not an input of the step")
		}
		st.rec.ins = append(st.rec.ins, stageAt{i, off, len(b)})
	} else {
		t0 := time.Now()
		copyPar(dst, b)
		totals.staging.Add(int64(time.Since(t0)))
	}
	if err := st.copying(phH2D); err != nil { // after the host's copy: it is staging time, not H2D
		return err
	}
	return st.s.HtoD(p, dst)
}

// fromDevice queues the copy of device address src to output k's host
// memory (through the staging buffer: finished by flushOuts).
func (st *execState) fromDevice(k int, t *ir.Tensor, src cuda.DevPtr) error {
	b := t.Data
	if err := st.copying(phD2H); err != nil {
		return err
	}
	capturing := st.seg.mode == modeCapture
	if !st.pinned || (!capturing && isPinned(b)) {
		return st.s.DtoH(b, src)
	}
	off, err := st.stageTake(len(b))
	if err != nil {
		return err
	}
	if st.twin {
		st.rec.outs = append(st.rec.outs, stageAt{k, off, len(b)})
	} else {
		st.outs = append(st.outs, hostCopy{b, off})
	}
	return st.s.DtoH(st.stage[off:off+len(b)], src)
}

// flushOuts copies the staged outputs to their tensors (the stream must
// have been synchronized).
func (st *execState) flushOuts() {
	if len(st.outs) == 0 {
		return
	}
	t0 := time.Now()
	for _, o := range st.outs {
		copyPar(o.dst, st.stage[o.off:o.off+len(o.dst)])
	}
	totals.staging.Add(int64(time.Since(t0)))
	clear(st.outs)
	st.outs = st.outs[:0]
}

func argIndex(ts []*ir.Tensor, t *ir.Tensor) int {
	for i, u := range ts {
		if u == t {
			return i
		}
	}
	return -1
}

// copyChunk is the least a goroutine of copyPar copies: below it the
// goroutine costs more than it saves.
const copyChunk = 2 << 20

// copyPar copies src to dst (equal lengths) with up to GOMAXPROCS
// goroutines: one core's memmove into pinned memory runs at about the
// pageable DMA rate, several cores together approach the bus rate.
func copyPar(dst, src []byte) {
	n := len(src)
	parts := min(runtime.GOMAXPROCS(0), n/copyChunk, 16)
	if parts <= 1 {
		copy(dst, src)
		return
	}
	per := (n + parts - 1) / parts
	per = (per + 4095) &^ 4095
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(dst[lo:hi], src[lo:hi])
		}()
	}
	wg.Wait()
}
