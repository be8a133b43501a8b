package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kilnml/kiln/ir"

	cudabackend "github.com/kilnml/kiln/backend/cuda"
	"github.com/spf13/cobra"
)

// --device selects where the builder places layers: "cpu" (the default) or
// "cuda" (the CUDA backend wins every layer it implements; the rest stay on
// the CPU). Plans with CUDA steps load anywhere but run only with a GPU.
var device = "cpu"

func init() {
	rootCmd.PersistentFlags().StringVar(&device, "device", "cpu", "where build places layers: cpu or cuda (CUDA through the driver, NVRTC and cuBLASLt, loaded at run time)")
	prevPre, prevPost := rootCmd.PersistentPreRunE, rootCmd.PersistentPostRunE
	rootCmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		switch strings.ToLower(device) {
		case "cpu", "":
			cudabackend.Disable()
		case "cuda", "gpu":
			if err := cudabackend.Enable(); err != nil {
				return fmt.Errorf("--device cuda: %w", err)
			}
			cudabackend.ResetTiming()
		default:
			return fmt.Errorf("--device %q: want cpu or cuda", device)
		}
		if prevPre != nil {
			return prevPre(cmd, args)
		}
		return nil
	}
	rootCmd.PersistentPostRunE = func(cmd *cobra.Command, args []string) error {
		// trtexec's split of GPU time, for every command that ran CUDA steps
		if t := cudabackend.ReadTiming(); t.Steps > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "GPU time of the whole command (builds, calibration and warm-up included): %v\n", t)
		}
		if prevPost != nil {
			return prevPost(cmd, args)
		}
		return nil
	}
}

// pinFeeds moves bench inputs into page-locked host memory while the CUDA
// backend is on, as trtexec's host buffers are: the GPU's copy engine then
// reads them by DMA, and a step (CUDA graph replays included) skips the
// copy into the context's staging buffer, which for SimpleCNN at batch
// 4096 costs more than the DMA. It returns what to release afterwards.
func pinFeeds(feeds map[string]*ir.Tensor) (pinned bool, release func(), err error) {
	var bufs [][]byte
	release = func() {
		for _, b := range bufs {
			cudabackend.HostFree(b)
		}
	}
	if !cudabackend.Enabled() {
		return false, release, nil
	}
	for _, name := range slices.Sorted(maps.Keys(feeds)) {
		t := feeds[name]
		if t.DType == ir.String || len(t.Data) == 0 {
			continue
		}
		p, err := cudabackend.NewPinnedTensor(t.DType, t.Dims)
		if err != nil {
			release()
			return false, nil, fmt.Errorf("input %q: page-locked host memory: %w", name, err)
		}
		copy(p.Data, t.Data)
		bufs = append(bufs, p.Data)
		feeds[name] = p
	}
	return len(bufs) > 0, release, nil
}

// gpuTotals sums the CUDA backend's time over timed bench runs: trtexec
// reports H2D, GPU compute and D2H per query over its timed runs only, not
// over the build (tactic timing copies every layer's data both ways) or the
// first runs (NVRTC compiles a module on first use while a span is open).
type gpuTotals struct {
	t    cudabackend.Timing
	runs int
}

func readGPU() cudabackend.Timing {
	if !cudabackend.Enabled() {
		return cudabackend.Timing{}
	}
	return cudabackend.ReadTiming()
}

func (g *gpuTotals) add(d cudabackend.Timing, runs int) {
	g.t = g.t.Add(d)
	g.runs += runs
}

// gpuPerRun is what kiln bench prints and writes as "gpu": means per run.
type gpuPerRun struct {
	Runs        int     `json:"runs"`
	H2DMs       float64 `json:"h2d_ms"`
	ComputeMs   float64 `json:"compute_ms"`
	D2HMs       float64 `json:"d2h_ms"`
	StagingMs   float64 `json:"staging_ms"` // host time copying to and from pinned staging
	StepsPerRun float64 `json:"steps_per_run"`
}

// perRun is nil when no CUDA step ran in the timed runs.
func (g *gpuTotals) perRun() *gpuPerRun {
	if g.runs == 0 || g.t.Steps == 0 {
		return nil
	}
	n := float64(g.runs)
	per := func(d time.Duration) float64 { return float64(d) / 1e6 / n }
	return &gpuPerRun{Runs: g.runs, H2DMs: per(g.t.H2D), ComputeMs: per(g.t.Compute), D2HMs: per(g.t.D2H),
		StagingMs: per(g.t.Staging), StepsPerRun: float64(g.t.Steps) / n}
}
