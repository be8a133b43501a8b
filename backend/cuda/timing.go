package cudabackend

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// TimeRun is the builder's tactic timer for GPU convolutions and matrix
// products (builder.selfTimer): the inputs are staged on the device once,
// then the step runs `runs` times with nothing copied back, and the median
// GPU compute time (CUDA events) is returned. Wall time would mostly
// measure the host copies of large activations, which every tactic of a
// layer shares.
func (k *gemmKernel) TimeRun(x *engine.Exec, in, out []*ir.Tensor, runs int) (time.Duration, error) {
	return timeOnDevice(x, &k.link, in, out, runs, func() error { return k.Run(x, in, out) })
}

func timeOnDevice(x *engine.Exec, l *link, in, out []*ir.Tensor, runs int, run func() error) (time.Duration, error) {
	saved := *l
	defer func() { *l = saved }()
	onDev := make([]bool, len(in))
	err := step(x, in, out, func(g *device, st *execState, mark func(int) error) (bool, error) {
		for i, t := range in {
			if t == nil || len(t.Data) == 0 {
				continue
			}
			p, err := st.residentFor(g, t)
			if err != nil {
				return false, err
			}
			if err := st.s.HtoD(p, t.Data); err != nil {
				return false, err
			}
			onDev[i] = true
		}
		if err := mark(1); err != nil {
			return false, err
		}
		return true, mark(2) // wait for the copies
	})
	if err != nil {
		return 0, err
	}
	*l = link{inOnDevice: onDev, outToHost: make([]bool, len(out))}
	times := make([]float64, 0, runs)
	for range max(runs, 1) {
		if err := run(); err != nil {
			return 0, err
		}
		ms, err := lastCompute(x)
		if err != nil {
			return 0, err
		}
		times = append(times, ms)
	}
	slices.Sort(times)
	return time.Duration(times[len(times)/2] * 1e6), nil
}

// lastCompute waits for the context's stream and returns the GPU compute
// time of its last step in milliseconds; the pending steps are not added
// to the process totals (ReadTiming).
func lastCompute(x *engine.Exec) (float64, error) {
	g, err := getDevice()
	if err != nil {
		return 0, err
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	defer runtime.KeepAlive(x)
	st, err := stateFor(g, x)
	if err != nil {
		return 0, err
	}
	if err := st.s.Sync(); err != nil {
		return 0, err
	}
	if len(st.pending) == 0 {
		return 0, fmt.Errorf("no step to time")
	}
	ev := st.pending[len(st.pending)-1]
	ms, err := ev[2].Elapsed(ev[1])
	for _, e := range st.pending {
		st.events = append(st.events, e[:]...)
	}
	st.pending = st.pending[:0]
	return float64(ms), err
}
