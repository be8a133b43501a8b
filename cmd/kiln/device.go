package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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
			fmt.Fprintf(cmd.ErrOrStderr(), "GPU time (all CUDA steps): %v\n", t)
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
