package layerdebug

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/engine"
)

// TestIssue9Numbers prints the numbers of BENCHMARKS.md's accuracy
// debugging section (KILN_ISSUE9_NUMBERS=1; minutes, not a CI test).
func TestIssue9Numbers(t *testing.T) {
	if os.Getenv("KILN_ISSUE9_NUMBERS") == "" {
		t.Skip("set KILN_ISSUE9_NUMBERS=1 to measure the issue 9 numbers")
	}
	m, ranges, _ := zoo(t)
	ev := zooEval(t, m, 10000, Accuracy)
	settings := []Setting{{Ranges: ranges, WeightBits: 3, PerTensorWeights: true}}
	if os.Getenv("KILN_ISSUE9_ALL") != "" {
		settings = append(settings, Setting{Ranges: ranges, WeightBits: 2}, Setting{Ranges: ranges})
	}
	for _, s := range settings {
		srch := &Searcher{Model: m, Setting: s, Eval: ev, Runs: 3000, Base: builder.Config{Deterministic: true, Threads: 1}}
		res, err := srch.Search(Budget{Metric: Accuracy, MaxDrop: 1})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("\n== weight bits %d, per-tensor %v: fp32 %.2f%% %v, all-int8 %.2f%% %v\n", s.WeightBits, s.PerTensorWeights, res.FP32.Score, res.FP32.Latency, res.AllQ.Score, res.AllQ.Latency)
		for _, l := range res.Layers {
			fmt.Printf("   %-16s only fp32 %.2f%%  only quantized %.2f%%  t32 %v  tq %v\n", l.Layer, l.OnlyKept, l.OnlyQuantized, l.FP32Time, l.QTime)
		}
		for _, p := range res.Points {
			mark := ""
			if res.Best != nil && strings.Join(p.Keep, ",") == strings.Join(res.Best.Keep, ",") {
				mark = "  <- chosen"
			}
			fmt.Printf("   keep %-45s %.2f%% %v meets=%v%s\n", orNone(p.Keep), p.Score, p.Latency, p.Meets, mark)
		}
		plan, _, err := Build(m, s, nil, srch.Base)
		if err != nil {
			t.Fatal(err)
		}
		eng, _ := engine.NewEngine(plan)
		ds, _ := datasrc.Open("mnist-raw:test", m.Graph.RealInputs(), datasrc.Options{MaxBatches: 1000})
		pl, err := Compare(m, eng, ds, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range pl.Blame {
			fmt.Printf("   blame %d %-36s %-5s before %.3g after %.3g added %.3g (SQNR %.1f dB)\n", i+1, b.Layer, b.Precision, b.Before, b.After, b.Added, b.SQNR)
		}
		for _, k := range plan.Steps {
			for _, mem := range k.Members {
				if mem == "Convolution28" {
					fmt.Printf("   kernel of %s: %s (%s)\n", k.Name, k.Kernel, k.Tactic)
				}
			}
		}
	}
}
