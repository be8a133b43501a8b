package main

import (
	"strconv"

	"github.com/kilnml/kiln/train"
	"github.com/spf13/pflag"
)

// fp8Flag is `kiln train mnist --fp8-training` (--fp8 is QAT's E4M3 export): a boolean flag that sets the
// trainer's FP8 recipe (train.FP8Recipe defaults: history 16, margin 0).
type fp8Flag struct{ r **train.FP8Recipe }

func (f fp8Flag) String() string {
	if f.r == nil || *f.r == nil {
		return "false"
	}
	return "true"
}

func (f fp8Flag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.r = nil
	if on {
		*f.r = &train.FP8Recipe{}
	}
	return nil
}

func (fp8Flag) Type() string     { return "bool" }
func (fp8Flag) IsBoolFlag() bool { return true }

// addFP8TrainingFlag registers --fp8-training on the mnist trainer's flags.
func addFP8TrainingFlag(fl *pflag.FlagSet, r **train.FP8Recipe) {
	f := fl.VarPF(fp8Flag{r}, "fp8-training", "", "train convolutions and linear layers in FP8 (E4M3 forward, E5M2 gradients, delayed scaling with a 16-step amax history)")
	f.NoOptDefVal = "true"
}
