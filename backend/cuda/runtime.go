package cudabackend

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/gpu/cuda/kernels"
	"github.com/kilnml/kiln/ir"
)

// workspaceBytes is the cuBLASLt workspace of each execution context.
const workspaceBytes = 32 << 20

// device is the process's GPU (ordinal 0) with kiln's compiled module.
type device struct {
	d      *cuda.Device
	mod    *cuda.Module
	load   *cuda.Stream // weight uploads at decode
	blas   *cuda.BLAS   // for planning GEMMs
	funcMu sync.Mutex

	igOnce sync.Once // igemm.cu, compiled on first use
	igMod  *cuda.Module
	igErr  error

	wgOnce sync.Once // wgmma.cu, compiled on first use
	wgMod  *cuda.Module
	wgErr  error
}

// wgemmFn returns a kernel of wgmma.cu (the NHWC implicit GEMM on
// Hopper's wgmma), compiling the module the first time; a compile failure
// (a device or NVRTC without sm_90a) is kept and fails those tactics only.
func (g *device) wgemmFn(name string) (*cuda.Function, error) {
	g.wgOnce.Do(func() {
		g.wgMod, g.wgErr = g.d.Module(kernels.WGemmName, kernels.WGemm)
	})
	if g.wgErr != nil {
		return nil, g.wgErr
	}
	return g.wgMod.Func(name)
}

// igemmFn returns a kernel of igemm.cu, compiling the module the first
// time; a compile failure is kept and reported by every implicit-GEMM step
// (the builder then times the other tactics).
func (g *device) igemmFn(name string) (*cuda.Function, error) {
	g.igOnce.Do(func() {
		g.igMod, g.igErr = g.d.Module(kernels.IGemmName, kernels.IGemm)
	})
	if g.igErr != nil {
		return nil, g.igErr
	}
	return g.igMod.Func(name)
}

var (
	devOnce sync.Once
	dev     *device
	devErr  error
)

// getDevice opens the GPU and compiles kiln's kernels once.
func getDevice() (*device, error) {
	devOnce.Do(func() {
		d, err := cuda.Open(0)
		if err != nil {
			devErr = err
			return
		}
		unbind, err := d.Bind()
		if err != nil {
			devErr = err
			return
		}
		defer unbind()
		g := &device{d: d}
		if g.mod, err = d.Module(kernels.Name, kernels.Source); err != nil {
			devErr = err
			return
		}
		if g.load, err = d.NewStream(); err != nil {
			devErr = err
			return
		}
		if g.blas, err = cuda.NewBLAS(); err != nil {
			devErr = err
			return
		}
		dev = g
	})
	return dev, devErr
}

// Available reports whether the CUDA backend can run here; the error says
// why not (it wraps cuda.ErrNoDevice).
func Available() error {
	_, err := getDevice()
	return err
}

// fn returns a kernel of kiln.cu.
func (g *device) fn(name string) (*cuda.Function, error) { return g.mod.Func(name) }

// Timing is where a CUDA step's time goes, as trtexec reports it: host to
// device copies, GPU compute, device to host copies (GPU time from events).
// Outside profiling the events are recorded where the kind of work changes
// (the lean timeline, timeline.go), also inside replayed CUDA graphs
// (event-record nodes), so compute is the GPU time from the end of the
// inputs' copies to the start of the outputs' copies, gaps between kernels
// included, as trtexec's GPU compute time.
//
// Staging is host time (wall clock) spent copying between Go memory and
// the pinned staging buffers.
type Timing struct {
	H2D, Compute, D2H time.Duration
	Staging           time.Duration
	Steps             int64
}

// Sub is the time between two ReadTiming calls (t the later one), as a
// bench needs for its timed runs alone.
func (t Timing) Sub(u Timing) Timing {
	return Timing{t.H2D - u.H2D, t.Compute - u.Compute, t.D2H - u.D2H, t.Staging - u.Staging, t.Steps - u.Steps}
}

// Add sums two such windows.
func (t Timing) Add(u Timing) Timing {
	return Timing{t.H2D + u.H2D, t.Compute + u.Compute, t.D2H + u.D2H, t.Staging + u.Staging, t.Steps + u.Steps}
}

func (t Timing) String() string {
	return fmt.Sprintf("H2D %v, GPU compute %v, D2H %v over %d CUDA steps (host staging %v)", t.H2D, t.Compute, t.D2H, t.Steps, t.Staging)
}

// syncSteps makes every eager step wait for its stream (SetStepSync).
var syncSteps atomic.Bool

// SetStepSync makes every CUDA step that runs eagerly wait for the GPU and
// account its time before returning, so that a per-step profiler
// (engine.Context.SetProfiler, kiln bench --dump-profile) sees each step's
// GPU time instead of its launch time. Turn graphs off too (SetGraphs):
// replayed graphs run whole segments. Off by default (it serializes the
// host with the GPU).
func SetStepSync(on bool) { syncSteps.Store(on) }

var totals struct{ h2d, compute, d2h, staging, steps atomic.Int64 }

// ReadTiming returns the time accumulated by every CUDA step of the
// process since the last ResetTiming.
func ReadTiming() Timing {
	return Timing{
		H2D:     time.Duration(totals.h2d.Load()),
		Compute: time.Duration(totals.compute.Load()),
		D2H:     time.Duration(totals.d2h.Load()),
		Staging: time.Duration(totals.staging.Load()),
		Steps:   totals.steps.Load(),
	}
}

// ResetTiming zeroes the accumulated timing.
func ResetTiming() {
	totals.h2d.Store(0)
	totals.compute.Store(0)
	totals.d2h.Store(0)
	totals.staging.Store(0)
	totals.steps.Store(0)
}

// execState is one execution context's GPU state: its stream, cuBLASLt
// handle, workspace, a growing scratch arena that each step carves up, and
// the device copies of tensors that CUDA steps pass to each other (keyed by
// the host address of the tensor's arena view, which the engine's memory
// plan gives to one live value at a time).
type execState struct {
	s        *cuda.Stream
	blas     *cuda.BLAS
	ws       cuda.DevPtr
	arena    cuda.DevPtr
	size     int64
	used     int64
	resident map[uintptr]devBuf
	nhwc     map[uintptr]bool   // device copies stored NHWC (layout.go)
	conv     map[uintptr]devBuf // relayouted copies of inputs (layout.go)
	events   []*cuda.Event      // free timing events
	pending  [][4]*cuda.Event
	tl       timeline // the lean timeline (timeline.go)

	// pinned staging (staging.go)
	pinned    bool   // staging on for the current step
	stage     []byte // page-locked, from cuda.HostAlloc
	stageUsed int
	outs      []hostCopy // staged outputs, copied to Go memory after the sync
	// allocGen counts frees and moves of the arena, the device copies and
	// the staging buffer: graphs captured at another generation are stale
	allocGen uint64

	// CUDA graphs (graphs.go)
	curIn, curOut []*ir.Tensor // the running step's arguments
	capS          *cuda.Stream // capture stream
	seg           segment
	layout        uint64
	graphs        map[segKey]*segGraph
	twin          bool    // the body runs on the capture stream
	rec           stepRec // the twin's staged copies
	graphsOff     string  // why graphs are off for this context
}

type devBuf struct {
	p cuda.DevPtr
	n int64
}

// states maps an engine.Exec (one per engine.Context, held weakly) to its
// GPU state, so the engine needs no change for per-context streams; the
// state's device memory is released when the context is collected.
var states sync.Map

func stateFor(g *device, x *engine.Exec) (*execState, error) {
	key := weak.Make(x)
	if v, ok := states.Load(key); ok {
		return v.(*execState), nil
	}
	st := &execState{resident: map[uintptr]devBuf{}, nhwc: map[uintptr]bool{}, conv: map[uintptr]devBuf{}, graphs: map[segKey]*segGraph{}}
	var err error
	if st.s, err = g.d.NewStream(); err != nil {
		return nil, err
	}
	if st.blas, err = cuda.NewBLAS(); err != nil {
		return nil, err
	}
	if st.ws, err = g.d.Alloc(workspaceBytes); err != nil {
		return nil, err
	}
	states.Store(key, st)
	runtime.AddCleanup(x, func(k weak.Pointer[engine.Exec]) {
		if v, ok := states.LoadAndDelete(k); ok {
			v.(*execState).release(g)
		}
	}, key)
	return st, nil
}

// release frees a collected context's device memory, staging buffer,
// graphs, cuBLASLt handle and streams (later, while another context
// captures a graph: see deferRelease).
func (st *execState) release(g *device) {
	if st.seg.mode == modeCapture { // its own capture: end it first
		unbind, err := g.d.Bind()
		if err != nil {
			return
		}
		if gr, err := st.capS.EndCapture(); err == nil {
			gr.Destroy()
		}
		st.seg.mode = modeEager
		unbind()
		captureEnded(g)
	}
	if deferRelease(st) {
		return
	}
	st.releaseNow(g)
	releaseDone()
}

func (st *execState) releaseNow(g *device) {
	unbind, err := g.d.Bind()
	if err != nil {
		return
	}
	defer unbind()
	st.s.Sync()
	st.dropGraphs()
	for _, b := range st.resident {
		cuda.Free(b.p)
	}
	for _, b := range st.conv {
		cuda.Free(b.p)
	}
	cuda.Free(st.arena)
	cuda.Free(st.ws)
	cuda.FreeHost(st.stage)
	for _, e := range st.events { // the pool (every step returns its events; the stream is synchronized above)
		e.Destroy()
	}
	for _, ev := range st.pending {
		for _, e := range ev {
			e.Destroy()
		}
	}
	for _, e := range st.tl.events() {
		e.Destroy()
	}
	st.events, st.pending, st.tl = nil, nil, timeline{}
	st.blas.Destroy()
	if st.capS != nil {
		st.capS.Destroy()
	}
	st.s.Destroy()
}

const align = 256

func alignUp(n int64) int64 { return (n + align - 1) / align * align }

// reserve makes the arena hold n bytes (the sum of a step's alignUp'd
// buffers) and resets the bump allocator.
func (st *execState) reserve(g *device, n int64) error {
	st.used = 0
	if n <= st.size {
		return nil
	}
	if st.arena != 0 {
		if err := st.s.Sync(); err != nil { // earlier steps may still use it
			return err
		}
		if err := cuda.Free(st.arena); err != nil {
			return err
		}
		st.arena, st.size = 0, 0
		st.allocGen++
	}
	n = n + n/4 // room to grow with the shapes
	p, err := g.d.Alloc(n)
	if err != nil {
		return err
	}
	st.arena, st.size = p, n
	return nil
}

// take returns the next n bytes of the arena.
func (st *execState) take(n int64) cuda.DevPtr {
	p := st.arena + cuda.DevPtr(st.used)
	st.used += alignUp(n)
	if st.used > st.size {
		panic("cudabackend: arena overrun (reserve too small)") // a sizing bug in this package
	}
	return p
}

func hostKey(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// residentFor returns the device copy of a host tensor's storage,
// allocating (or growing) it, for a step to write: its layout is reset to
// NCHW (a step writing NHWC says so with setNHWC).
func (st *execState) residentFor(g *device, t *ir.Tensor) (cuda.DevPtr, error) {
	n := int64(len(t.Data))
	k := hostKey(t.Data)
	delete(st.nhwc, k)
	if st.twin {
		st.rec.layouts = append(st.rec.layouts, layoutSet{k, false})
	}
	if b, ok := st.resident[k]; ok && b.n >= n {
		return b.p, nil
	} else if ok {
		if err := st.s.Sync(); err != nil {
			return 0, err
		}
		cuda.Free(b.p)
		delete(st.resident, k)
		st.allocGen++
	}
	p, err := g.d.Alloc(n)
	if err != nil {
		return 0, err
	}
	st.resident[k] = devBuf{p, n}
	return p, nil
}

var errMissingCopy = fmt.Errorf("input's device copy is missing (producer did not run on this context)")

// input returns the device address of a step input in NCHW: the producer's
// device copy when it ran on the GPU (an NCHW copy of it when it was
// written NHWC, see layout.go), else a copy made now into the arena.
func (st *execState) input(g *device, t *ir.Tensor, onDevice bool) (cuda.DevPtr, error) {
	return st.inputAs(g, t, onDevice, false)
}

// link is the DeviceKernel part every CUDA kernel shares: where inputs come
// from and which outputs the host reads (see engine.DeviceKernel).
type link struct {
	inOnDevice, outToHost []bool
}

func (l *link) Device() string { return "cuda" }

func (l *link) Link(in, out []bool) { l.inOnDevice, l.outToHost = in, out }

func (l *link) onDevice(i int) bool { return i < len(l.inOnDevice) && l.inOnDevice[i] }

// toHost says whether output k must be copied back (unlinked kernels copy
// everything).
func (l *link) toHost(k int) bool {
	return l.outToHost == nil || k >= len(l.outToHost) || l.outToHost[k]
}

// finish copies the host-read outputs back; it reports whether it did (then
// the step must wait for the stream).
func (l *link) finish(st *execState, out []*ir.Tensor, dout []cuda.DevPtr) (bool, error) {
	synced := false
	for k, t := range out {
		if t == nil || !l.toHost(k) {
			continue
		}
		if err := st.fromDevice(k, t, dout[k]); err != nil {
			return false, err
		}
		synced = true
	}
	return synced, nil
}

func (st *execState) event() (*cuda.Event, error) {
	if n := len(st.events); n > 0 {
		e := st.events[n-1]
		st.events = st.events[:n-1]
		return e, nil
	}
	return cuda.NewEvent()
}

// stepBody enqueues a step's copies and kernels on st.s.
type stepBody func(g *device, st *execState, mark func(i int) error) (bool, error)

// step runs one CUDA step: bind the device, get the context's state, let
// body enqueue copies and kernels (marking the H2D/compute boundaries with
// mark(1) and mark(2)). body reports whether it copied anything back to
// host memory: only then does the step wait for the stream, and the time of
// every step since the last wait is accounted. in and out are the step's
// arguments: a replayed CUDA graph (graphs.go) does not run body but
// stages in's host data and copies out's results back. body may run twice
// (see captureTwin), so it must be free of side effects other than through
// st.
func step(x *engine.Exec, in, out []*ir.Tensor, body stepBody) error {
	g, err := getDevice()
	if err != nil {
		return err
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return err
	}
	defer unbind()
	// x's collection frees its state (stream, arena): keep it alive while
	// this step uses them, also when the caller drops x right after Run
	defer runtime.KeepAlive(x)
	st, err := stateFor(g, x)
	if err != nil {
		return err
	}
	st.curIn, st.curOut = in, out
	defer func() { st.curIn, st.curOut = nil, nil }()
	st.pinned = pinnedOn.Load()
	mode := st.beginStep(g, x)
	if mode == modeReplay {
		return st.replayStep(in, out)
	}
	st.s.SetPDL(pdlOn.Load() && g.d.PDLSupported()) // pdl.go
	// the lean timeline (timeline.go) unless a step's own time is wanted
	st.tl.on = !stepEvents.Load() && !syncSteps.Load() && x.Execution > 0
	var ev [4]*cuda.Event
	mark := func(i int) error { return st.tl.mark(st, st.s, i) }
	if !st.tl.on {
		for i := range ev {
			if ev[i], err = st.event(); err != nil {
				return err
			}
		}
		mark = func(i int) error { return ev[i].Record(st.s) }
		if err := mark(0); err != nil {
			return err
		}
	}
	gen, stageStart := st.allocGen, st.stageUsed
	toHost, err := body(g, st, mark)
	if err != nil {
		st.abortCapture("the step failed: " + err.Error())
		st.tl.leave(st, st.s)
		st.s.Sync()
		st.flushOuts()
		st.endSegment()
		return err
	}
	if st.tl.on {
		st.tl.steps++
	} else {
		if err := mark(3); err != nil {
			return err
		}
		st.pending = append(st.pending, ev)
	}
	if st.seg.mode == modeCapture {
		st.captureTwin(g, body, gen, stageStart, toHost)
	}
	st.seg.step++
	if !toHost {
		if !syncSteps.Load() || st.seg.mode != modeEager {
			return nil // the next step queues behind this one
		}
		// profiling: wait for this step alone, so that a host profiler
		// (and ReadTiming's Compute) sees its GPU time
		if err := st.s.Sync(); err != nil {
			return err
		}
		return st.account()
	}
	if st.seg.mode == modeCapture {
		st.endCapture(g)
	}
	if err := st.tl.leave(st, st.s); err != nil {
		return err
	}
	if err := st.s.Sync(); err != nil {
		return err
	}
	st.flushOuts()
	st.endSegment()
	return st.account()
}

// account adds the times of the finished steps to the totals.
func (st *execState) account() error {
	for _, ev := range st.pending {
		var ms [3]float32
		for i := range ms {
			var err error
			if ms[i], err = ev[i+1].Elapsed(ev[i]); err != nil {
				return err
			}
		}
		totals.h2d.Add(int64(float64(ms[0]) * 1e6))
		totals.compute.Add(int64(float64(ms[1]) * 1e6))
		totals.d2h.Add(int64(float64(ms[2]) * 1e6))
		totals.steps.Add(1)
		st.events = append(st.events, ev[:]...)
	}
	st.pending = st.pending[:0]
	return st.tl.account(st)
}

// grid1 is a grid for a grid-stride loop over n elements.
func grid1(g *device, n int64) [3]uint32 {
	b := (n + 255) / 256
	if lim := int64(g.d.SMs) * 32; b > lim {
		b = lim
	}
	return [3]uint32{uint32(b), 1, 1}
}

var block256 = [3]uint32{256, 1, 1}

// launch1 runs a grid-stride kernel over n elements.
func launch1(g *device, st *execState, name string, n int64, a *cuda.Args) error {
	f, err := g.fn(name)
	if err != nil {
		return err
	}
	return f.Launch(st.s, grid1(g, n), block256, 0, a)
}

// rows launches a one-block-per-row kernel.
func launchRows(g *device, st *execState, name string, rows int64, a *cuda.Args) error {
	f, err := g.fn(name)
	if err != nil {
		return err
	}
	b := rows
	if lim := int64(g.d.SMs) * 16; b > lim {
		b = lim
	}
	return f.Launch(st.s, [3]uint32{uint32(b), 1, 1}, block256, 0, a)
}
