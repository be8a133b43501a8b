// Command kiln turns ONNX models into fast inference engines and checks
// them: run, inspect, and (as they land) train, calibrate, quantize, build,
// bench, compare, demo. Each verb lives in its own file and adds itself to
// rootCmd in init; the logic behind them lives in importable packages.
package main

import (
	"fmt"
	"github.com/kilnml/kiln/kernels/isa"
	"io"
	"os"
	"runtime/debug"

	_ "github.com/kilnml/kiln/backend/cpu" // fast CPU kernels for every engine kiln builds
	"github.com/kilnml/kiln/internal/cli"
	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=v0.1.0"); without
// it kiln reports the module version from the build information.
var version = ""

var rootCmd = &cobra.Command{
	Use:   "kiln",
	Short: "Build, quantize, run and check inference engines for ONNX models",
	Long: `kiln turns ONNX models into fast, quantized inference engines and checks them,
in the spirit of TensorRT, trtexec and Polygraphy.`,
	Version: kilnVersion(),
	// Errors are printed once, by main; a usage error adds a hint there.
	SilenceErrors: true,
	SilenceUsage:  true,
}

func init() {
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	rootCmd.CompletionOptions.HiddenDefaultCmd = true
}

func kilnVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// execute runs kiln with args, printing to stdout and stderr, and returns
// the exit code: 0 on success, 1 on failure, 2 on a usage error.
func execute(args []string, stdout, stderr io.Writer) int {
	rootCmd.SetArgs(args)
	rootCmd.SetOut(stdout)
	rootCmd.SetErr(stderr)
	cmd, err := rootCmd.ExecuteC()
	code := cli.ExitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "kiln: %v\n", err)
		if code == 2 {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

func main() {
	if w := isa.Warning(); w != "" {
		fmt.Fprintf(os.Stderr, "kiln: warning: %s\n", w)
	}
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
