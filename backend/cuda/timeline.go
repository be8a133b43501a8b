package cudabackend

import (
	"os"
	"sync/atomic"

	"github.com/kilnml/kiln/gpu/cuda"
)

// The lean timeline: how an Execute's GPU time is split into H2D, compute
// and D2H without CUDA events around every step.
//
// Per-step events (four a step: before and after its host-to-device
// copies, after its kernels, after its device-to-host copies) cost the GPU
// front end a few hundred nanoseconds each between two kernels, and they
// stand between consecutive kernels, so programmatic dependent launches
// (pdl.go) could not overlap them. The lean timeline records an event only
// where the kind of work changes: before a step's first host-to-device copy,
// after its copies (mark(1)), before its first device-to-host copy, and
// where the segment ends (the host synchronization). A run of steps
// without copies is one compute span, as trtexec's GPU compute time is one
// pair of events around the whole enqueue.
//
// What that changes: GPU idle time between two steps of a span (the host
// enqueuing more slowly than the GPU runs) is counted as compute; with
// per-step events it fell between a step's end and the next one's start.
// The host-side staging copy of an input is not counted as H2D any more
// (its event is recorded after the copy into the pinned buffer, right
// before the DMA is queued); per-step events started H2D at the step's
// start, so an idle GPU timed the host's copy too.
//
// Per-step events stay where a step's own time is wanted: SetStepSync
// (profiling), the builder's tactic timer (Exec.Execution 0) and
// SetStepEvents(true) (KILN_CUDA_STEP_EVENTS=1).

var stepEvents atomic.Bool

func init() { stepEvents.Store(os.Getenv("KILN_CUDA_STEP_EVENTS") == "1") }

// SetStepEvents records CUDA events around every step (on) instead of the
// lean timeline (off, the default) for later Executes.
func SetStepEvents(on bool) { stepEvents.Store(on) }

// StepEvents reports whether per-step events are on.
func StepEvents() bool { return stepEvents.Load() }

// phase is what the GPU does after a timeline event.
type phase int8

const (
	phNone phase = iota // no span open
	phH2D
	phCompute
	phD2H
)

// span is the GPU time between two events, spent on one phase.
type span struct {
	a, b *cuda.Event
	ph   phase
}

// timeline is a context's lean-timeline state, or a captured graph's.
type timeline struct {
	on    bool        // the running step uses it
	open  *cuda.Event // the last event recorded (nil: no span open)
	ph    phase       // the open span's phase
	spans []span      // closed spans, accounted at the next wait
	steps int64       // steps since the last accounting
	// graph: the events are nodes of a captured graph (recorded with
	// RecordExternal on the capture stream), kept with it and accounted
	// after each of its replays
	graph bool
}

// enter closes the open span (if any) with a new event recorded on s and
// opens one of phase ph; nothing is recorded if that span is already open.
func (tl *timeline) enter(st *execState, s *cuda.Stream, ph phase) error {
	if tl.open != nil && tl.ph == ph {
		return nil
	}
	e, err := tl.record(st, s)
	if err != nil {
		return err
	}
	if tl.open != nil {
		tl.spans = append(tl.spans, span{tl.open, e, tl.ph})
	}
	tl.open, tl.ph = e, ph
	return nil
}

// leave closes the open span (before the host waits for the stream, or
// at the end of a capture).
func (tl *timeline) leave(st *execState, s *cuda.Stream) error {
	if tl.open == nil {
		return nil
	}
	e, err := tl.record(st, s)
	if err != nil {
		return err
	}
	tl.spans = append(tl.spans, span{tl.open, e, tl.ph})
	tl.open, tl.ph = nil, phNone
	return nil
}

func (tl *timeline) record(st *execState, s *cuda.Stream) (*cuda.Event, error) {
	e, err := st.event()
	if err != nil {
		return nil, err
	}
	if tl.graph {
		err = e.RecordExternal(s)
	} else {
		err = e.Record(s)
	}
	if err != nil {
		st.events = append(st.events, e)
		return nil, err
	}
	return e, nil
}

// mark is a step body's mark under a timeline: mark(1), the end of the
// step's host-to-device copies, opens a compute span unless one is open;
// the other marks record nothing (copies open their own spans: copying).
func (tl *timeline) mark(st *execState, s *cuda.Stream, i int) error {
	if i == 1 && tl.ph != phCompute {
		return tl.enter(st, s, phCompute)
	}
	return nil
}

// copying opens a span of phase ph before a copy is queued: on the
// context's lean timeline, or in a capture's twin pass on the graph's.
func (st *execState) copying(ph phase) error {
	if st.twin {
		if tl := st.graphTimeline(); tl != nil {
			return tl.enter(st, st.s, ph)
		}
		return nil
	}
	if !st.tl.on {
		return nil
	}
	return st.tl.enter(st, st.s, ph)
}

// account adds the closed spans to the totals (the stream has been
// synchronized). A context's timeline returns its events to the pool, each
// once (a span's end is the next span's start); a graph's keeps them.
func (tl *timeline) account(st *execState) error {
	for _, s := range tl.spans {
		ms, err := s.b.Elapsed(s.a)
		if err != nil {
			return err
		}
		d := int64(float64(ms) * 1e6)
		switch s.ph {
		case phH2D:
			totals.h2d.Add(d)
		case phD2H:
			totals.d2h.Add(d)
		default:
			totals.compute.Add(d)
		}
	}
	if !tl.graph {
		st.events = append(st.events, tl.unique(false)...) // the open span's start stays in use
		tl.spans = tl.spans[:0]
	}
	totals.steps.Add(tl.steps)
	if !tl.graph {
		tl.steps = 0
	}
	return nil
}

// events lists every event the timeline holds, each once.
func (tl *timeline) events() []*cuda.Event { return tl.unique(true) }

// unique lists the closed spans' events, each once (consecutive spans
// share an event: one's end is the next one's start), and the open span's
// start if withOpen.
func (tl *timeline) unique(withOpen bool) []*cuda.Event {
	var out []*cuda.Event
	for i, s := range tl.spans {
		if i == 0 || tl.spans[i-1].b != s.a {
			out = append(out, s.a)
		}
		if tl.open != s.b {
			out = append(out, s.b)
		}
	}
	if withOpen && tl.open != nil {
		out = append(out, tl.open)
	}
	return out
}
