package cudabackend

import (
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// CUDA graphs. The engine runs its steps one call at a time, with host
// steps possibly in between, so kiln captures *segments*: the CUDA steps
// from one host synchronization to the next (a segment ends at the step
// whose output the host reads). A context's Execute with unchanged shapes
// runs the same steps on the same memory every time (engine.Exec's
// Execution and Layout counters say when that holds), so a segment is
// known by (Layout, its index within the Execute):
//
//   - first run: eager (it also allocates the arena, the device copies and
//     the staging buffer at their final sizes);
//   - second run: eager again, and each step's body runs a second time on
//     a capture stream (same device addresses, nothing executes there); at
//     the segment's end the capture becomes a graph;
//   - later runs: each step only copies its host inputs into the staging
//     buffer; the segment's last step launches the graph, waits, and
//     copies the outputs out of the staging buffer.
//
// A capture that fails (an uncapturable call, memory that moved during
// it) leaves that segment eager, and the reason is logged once. Any free
// of device or staging memory (allocGen) makes the graphs stale: they are
// dropped and captured again. KILN_CUDA_GRAPHS=0 or SetGraphs(false) turns
// graphs off; they also need pinned staging (a graph's host copies read
// the staging buffer).

var graphsOn atomic.Bool

func init() { graphsOn.Store(os.Getenv("KILN_CUDA_GRAPHS") != "0") }

// SetGraphs turns CUDA graphs on or off for the Executes that follow.
func SetGraphs(on bool) { graphsOn.Store(on) }

// Graphs reports whether CUDA graphs are on.
func Graphs() bool { return graphsOn.Load() }

// GraphLog receives the reasons graphs fall back to eager launches (once
// per segment); log.Printf by default.
var GraphLog = log.Printf

// GraphStats counts graph activity since the process started.
type GraphStats struct {
	Captures, Replays, Failures int64
	LastFailure                 string
	// DeferredReleases counts context releases that waited for a capture.
	DeferredReleases int64
	// EarlyCopies counts the host-to-device copies of caller-pinned inputs
	// that replays queued ahead of their graph instead of staging them.
	EarlyCopies int64
}

var graphStats struct {
	captures, replays, failures, early atomic.Int64
	mu                                 sync.Mutex
	last                               string
}

// ReadGraphStats returns the process's graph counters.
func ReadGraphStats() GraphStats {
	graphStats.mu.Lock()
	defer graphStats.mu.Unlock()
	return GraphStats{graphStats.captures.Load(), graphStats.replays.Load(), graphStats.failures.Load(), graphStats.last, releasesDeferred.Load(), graphStats.early.Load()}
}

// Releases of collected contexts wait while any capture is open: a
// context's release frees device and pinned memory (cuMemFree,
// cuMemFreeHost synchronize the device, which invalidates a capture in
// progress), runs on the garbage collector's cleanup goroutine at any
// time, and is the suspected cause of a capture invalidated with no
// failing call of kiln's own (seen once on an H200 in session 5, and in
// session 10's TestLeanTimelineAndPDL, which drops a context per mode).
// The last capture to end releases them. A capture does not start while a
// release runs (releasing): the segment stays eager for that run and is
// captured on a later one.
var (
	releaseMu        sync.Mutex
	openCaptures     int
	releasing        int // releases running now (not deferred)
	deferredReleases []*execState
	releasesDeferred atomic.Int64
)

// tryCaptureStart counts a capture about to begin; false while a release
// runs (no capture then).
func tryCaptureStart() bool {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if releasing > 0 {
		return false
	}
	openCaptures++
	return true
}

// releaseDone ends a release counted by deferRelease or captureEnded.
func releaseDone() {
	releaseMu.Lock()
	releasing--
	releaseMu.Unlock()
}

// captureEnded is called once per captureStarted, with the device bound.
func captureEnded(g *device) {
	releaseMu.Lock()
	openCaptures--
	var todo []*execState
	if openCaptures == 0 {
		todo, deferredReleases = deferredReleases, nil
		releasing += len(todo)
	}
	releaseMu.Unlock()
	for _, st := range todo {
		st.releaseNow(g)
		releaseDone()
	}
}

// deferRelease queues st's release while a capture is open; it reports
// whether it did. If not, the caller releases now and calls releaseDone.
func deferRelease(st *execState) bool {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if openCaptures == 0 {
		releasing++
		return false
	}
	deferredReleases = append(deferredReleases, st)
	releasesDeferred.Add(1)
	return true
}

type segMode int

const (
	modeEager segMode = iota
	modeCapture
	modeReplay
)

type segKey struct {
	layout uint64
	idx    int
}

// segment is where the context is in the current Execute.
type segment struct {
	exec uint64 // x.Execution of the segment's Execute (0: untracked)
	idx  int    // segments finished in this Execute
	open bool
	key  segKey
	mode segMode
	step int // steps of the open segment so far
}

// segGraph is what the context knows of one segment.
type segGraph struct {
	graph    *cuda.Graph
	allocGen uint64    // memory generation the graph's addresses belong to
	steps    []stepRec // per step: the staged copies to do at replay
	failed   string    // why it runs eagerly for good
	retries  int       // captures discarded because memory moved
	// tl is the capture's timeline (timeline.go): event-record nodes where
	// the kind of work changes, so that a replay's time splits into H2D,
	// compute and D2H as eager runs do; empty without RecordExternal
	tl timeline
}

// graphTimeline is the timeline of the segment being captured, nil where
// the driver cannot record events as graph nodes.
func (st *execState) graphTimeline() *timeline {
	r := st.graphs[st.seg.key]
	if r == nil || !cuda.ExternalRecordSupported() {
		return nil
	}
	r.tl.graph = true
	return &r.tl
}

// resetTimeline returns a segment's timeline events to the pool (its graph
// is gone or being replaced; no replay is in flight).
func (st *execState) resetTimeline(r *segGraph) {
	st.events = append(st.events, r.tl.events()...)
	r.tl = timeline{graph: true}
}

// maxCaptureRetries is how often a segment's capture may be discarded
// because memory moved during it (allocations still settling) before the
// segment stays eager.
const maxCaptureRetries = 3

type stepRec struct {
	nIn, nOut int
	ins, outs []stageAt
	early     []earlyCopy // caller-pinned inputs of a segment's first step
	layouts   []layoutSet // device copies the step marked NHWC or NCHW (replayed too)
}

// beginStep decides how the step about to run is executed.
func (st *execState) beginStep(g *device, x *engine.Exec) segMode {
	if x.Execution == 0 || !graphsOn.Load() || !st.pinned || st.graphsOff != "" {
		if st.seg.open && st.seg.mode == modeCapture {
			st.abortCapture("graphs or pinned staging were turned off during the capture")
		}
		st.seg = segment{}
		return modeEager
	}
	if x.Execution != st.seg.exec {
		if st.seg.open && st.seg.mode == modeCapture {
			st.abortCapture("the segment did not end with a copy to the host")
		}
		st.seg = segment{exec: x.Execution}
	}
	if x.Layout != st.layout {
		st.dropGraphs()
		st.layout = x.Layout
	}
	if st.seg.open {
		return st.seg.mode
	}
	key := segKey{x.Layout, st.seg.idx}
	st.seg.open, st.seg.key, st.seg.step, st.seg.mode = true, key, 0, modeEager
	r := st.graphs[key]
	switch {
	case r == nil:
		st.graphs[key] = &segGraph{}
	case r.failed != "":
	case r.graph != nil && r.allocGen == st.allocGen:
		st.seg.mode = modeReplay
	case r.graph != nil: // memory moved since the capture: capture again
		r.graph.Destroy()
		r.graph = nil
		st.resetTimeline(r)
	case st.stageUsed != 0 || len(st.outs) != 0:
		// staged copies of an unfinished segment are queued; offsets would
		// differ at replay. Stay eager (rare: a segment without host read).
	default:
		if st.capS == nil {
			s, err := g.d.NewStream()
			if err != nil {
				st.failSegment(r, "creating the capture stream: "+err.Error())
				return modeEager
			}
			st.capS = s
		}
		if !tryCaptureStart() { // a context's release is running: capture on a later run
			return modeEager
		}
		if err := st.capS.BeginCapture(); err != nil {
			captureEnded(g)
			st.failSegment(r, err.Error())
			return modeEager
		}
		st.resetTimeline(r)
		r.steps, r.allocGen = r.steps[:0], st.allocGen
		st.seg.mode = modeCapture
	}
	return st.seg.mode
}

// captureTwin runs a step's body a second time on the capture stream,
// recording the staged copies, after the eager pass succeeded.
func (st *execState) captureTwin(g *device, body stepBody, gen uint64, stageStart int, toHost bool) {
	r := st.graphs[st.seg.key]
	if st.allocGen != gen {
		st.retryCapture()
		return
	}
	eagerEnd := st.stageUsed
	saved := st.s
	st.capS.SetPDL(saved.PDL()) // kernels captured as programmatic dependents become graph edges of that kind
	st.s, st.twin, st.stageUsed = st.capS, true, stageStart
	st.rec = stepRec{nIn: len(st.curIn), nOut: len(st.curOut)}
	twinHost, err := body(g, st, func(i int) error {
		if tl := st.graphTimeline(); tl != nil {
			return tl.mark(st, st.s, i)
		}
		return nil
	})
	st.s, st.twin = saved, false
	switch {
	case err != nil:
		st.abortCapture(err.Error())
	case st.allocGen != gen:
		st.retryCapture()
	case st.stageUsed != eagerEnd || twinHost != toHost:
		st.abortCapture("the capture pass did not repeat the eager pass")
	default:
		r.steps = append(r.steps, st.rec)
	}
	st.stageUsed = eagerEnd
	st.rec = stepRec{}
}

// endCapture turns the finished segment's capture into a graph.
func (st *execState) endCapture(g *device) {
	r := st.graphs[st.seg.key]
	tlErr := r.tl.leave(st, st.capS)
	gr, err := st.capS.EndCapture()
	captureEnded(g)
	if err == nil && tlErr != nil {
		gr.Destroy()
		err = tlErr
	}
	if err != nil {
		st.failSegment(r, err.Error())
		st.seg.mode = modeEager
		return
	}
	r.graph = gr
	graphStats.captures.Add(1)
}

// retryCapture discards an open capture during which memory moved: the
// segment is captured again on its next run (up to maxCaptureRetries).
func (st *execState) retryCapture() {
	r := st.graphs[st.seg.key]
	if r == nil || r.retries >= maxCaptureRetries {
		st.abortCapture("device or staging memory moved during every capture")
		return
	}
	r.retries++
	if gr, err := st.capS.EndCapture(); err == nil {
		gr.Destroy()
	}
	captureEnded(dev)
	r.steps = nil
	st.resetTimeline(r)
	st.seg.mode = modeEager
}

// abortCapture ends an open capture, discarding it, and keeps the segment
// eager for good.
func (st *execState) abortCapture(reason string) {
	if st.seg.mode != modeCapture {
		return
	}
	if gr, err := st.capS.EndCapture(); err == nil {
		gr.Destroy()
	}
	captureEnded(dev)
	st.seg.mode = modeEager
	if r := st.graphs[st.seg.key]; r != nil {
		st.failSegment(r, reason)
	}
}

func (st *execState) failSegment(r *segGraph, reason string) {
	r.failed = reason
	r.steps = nil
	st.resetTimeline(r)
	graphStats.failures.Add(1)
	graphStats.mu.Lock()
	graphStats.last = reason
	graphStats.mu.Unlock()
	GraphLog("kiln cuda: segment %d runs without a CUDA graph: %s", st.seg.key.idx, reason)
}

// dropGraphs destroys every graph of the context.
func (st *execState) dropGraphs() {
	for k, r := range st.graphs {
		if r.graph != nil {
			r.graph.Destroy()
		}
		st.resetTimeline(r)
		delete(st.graphs, k)
	}
}

// earlyCopy is a copy a graph leaves out: argument i of the segment's
// first step, n bytes from a caller's pinned buffer to device address p.
//
// A graph's host-to-device copy reads the host address it was captured
// with, so graphs read inputs from the context's staging buffer, and each
// replay first copies the inputs there on the host (for SimpleCNN at batch
// 4096, 12.8 MB: about 0.4 ms, more than the DMA itself). The copies of a
// segment's first step can instead be queued on the stream just before the
// graph, from wherever the input is at that replay: nothing in the segment
// runs before them, and the arena bytes they write are not in use (the
// previous segment has finished). So a caller-pinned input of a first step
// is copied by DMA straight from the caller's buffer, as without graphs.
type earlyCopy struct {
	i, n int
	p    cuda.DevPtr
}

// earlyCopyOf says whether the copy of host bytes b to the device, in the
// step running now, is left out of the graph being captured.
func (st *execState) earlyCopyOf(b []byte) bool {
	return st.seg.mode == modeCapture && st.seg.step == 0 && isPinned(b)
}

// queueEarly queues a replayed first step's early copies (before the
// graph's launch) as an H2D span of the context's timeline.
func (st *execState) queueEarly(j int, rec *stepRec, in []*ir.Tensor) error {
	if len(rec.early) == 0 {
		return nil
	}
	for _, a := range rec.early {
		if len(in[a.i].Data) != a.n {
			return st.diverged(fmt.Sprintf("input %d of step %d has %d bytes, %d when captured", a.i, j, len(in[a.i].Data), a.n))
		}
	}
	if err := st.tl.enter(st, st.s, phH2D); err != nil {
		return err
	}
	for _, a := range rec.early {
		if err := st.s.HtoD(a.p, in[a.i].Data); err != nil {
			return err
		}
	}
	graphStats.early.Add(int64(len(rec.early)))
	return st.tl.leave(st, st.s)
}

// replayStep is a step of a captured segment: stage the host inputs (or
// queue a first step's early copies); the last step launches the graph,
// waits and copies the outputs back.
func (st *execState) replayStep(in, out []*ir.Tensor) error {
	r := st.graphs[st.seg.key]
	j := st.seg.step
	if j >= len(r.steps) || r.steps[j].nIn != len(in) || r.steps[j].nOut != len(out) {
		return st.diverged(fmt.Sprintf("step %d of segment %d differs from the captured one", j, st.seg.key.idx))
	}
	rec := &r.steps[j]
	for _, l := range rec.layouts { // what the step's body would have recorded
		if l.nhwc {
			st.nhwc[l.key] = true
		} else {
			delete(st.nhwc, l.key)
		}
	}
	if err := st.queueEarly(j, rec, in); err != nil {
		return err
	}
	t0 := time.Now()
	for _, a := range rec.ins {
		b := in[a.i].Data
		if len(b) != a.n {
			return st.diverged(fmt.Sprintf("input %d of step %d has %d bytes, %d when captured", a.i, j, len(b), a.n))
		}
		copyPar(st.stage[a.off:a.off+a.n], b)
	}
	totals.staging.Add(int64(time.Since(t0)))
	st.seg.step++
	if j < len(r.steps)-1 {
		return nil
	}
	timed := len(r.tl.spans) > 0 // the graph records its own spans
	if timed {
		if err := r.graph.Launch(st.s); err != nil {
			return err
		}
	} else { // the whole graph as compute
		var ev [4]*cuda.Event
		for i := range ev {
			var err error
			if ev[i], err = st.event(); err != nil {
				return err
			}
		}
		ev[0].Record(st.s)
		ev[1].Record(st.s)
		if err := r.graph.Launch(st.s); err != nil {
			return err
		}
		ev[2].Record(st.s)
		ev[3].Record(st.s)
		st.pending = append(st.pending, ev)
	}
	graphStats.replays.Add(1)
	if err := st.s.Sync(); err != nil {
		return err
	}
	if timed {
		r.tl.steps = int64(len(r.steps))
		if err := r.tl.account(st); err != nil {
			return err
		}
	}
	t0 = time.Now()
	for _, a := range rec.outs {
		copyPar(out[a.i].Data[:a.n], st.stage[a.off:a.off+a.n])
	}
	totals.staging.Add(int64(time.Since(t0)))
	st.endSegment()
	return st.account()
}

// diverged turns graphs off for the context: the engine ran other steps
// than the ones captured for this Execute's segment, which Execution and
// Layout should rule out (a bug). The segment's earlier steps only staged
// their inputs, so this Execute fails; the next runs eagerly.
func (st *execState) diverged(why string) error {
	st.graphsOff = why
	st.dropGraphs()
	st.seg = segment{}
	st.stageUsed = 0
	graphStats.failures.Add(1)
	GraphLog("kiln cuda: CUDA graphs off for this context: %s", why)
	return fmt.Errorf("CUDA graph replay: %s (graphs are now off for this context; KILN_CUDA_GRAPHS=0 turns them off)", why)
}

// endSegment closes the open segment after its host synchronization.
func (st *execState) endSegment() {
	if st.seg.open {
		st.seg.open = false
		st.seg.idx++
	}
	st.stageUsed = 0
}
