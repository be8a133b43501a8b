package main

import (
	"fmt"
	"strings"

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
