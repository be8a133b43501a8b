package builder

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

func gaussian(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// logUniform: |x| spread evenly over the given octaves below 1 (gradient-like).
func logUniform(n int, octaves float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Exp2(-octaves * rng.Float64()))
		if rng.IntN(2) == 0 {
			v[i] = -v[i]
		}
	}
	return v
}

func octaves(vals []float32) *OctaveHist {
	h := &OctaveHist{}
	h.Observe(vals)
	return h
}

func TestChooseFP8Format(t *testing.T) {
	e5 := FP8FormatOptions{AllowE5M2: true}
	cases := []struct {
		name string
		vals []float32
		opt  FP8FormatOptions
		want string
	}{
		{"gaussian", gaussian(50000, 1), e5, "E4M3"},
		{"relu of gaussian", relu(gaussian(50000, 2)), e5, "E4M3"}, // exact zeros are exact in every format
		{"24 octaves", logUniform(50000, 24, 3), e5, "E5M2"},
		{"24 octaves, E4M3 kernels only", logUniform(50000, 24, 3), FP8FormatOptions{}, "FP16"},
		{"40 octaves", logUniform(50000, 40, 4), e5, "FP16"},
		{"zeros", make([]float32, 100), e5, "E4M3"},
	}
	for _, c := range cases {
		got := ChooseFP8Format(c.name, octaves(c.vals), 0, c.opt)
		if got.Format.Name != c.want {
			t.Errorf("%s: %s, want %s (%s)", c.name, got.Format.Name, c.want, got.Reason)
		}
		if !strings.HasPrefix(got.Reason, c.want+":") {
			t.Errorf("%s: reason %q", c.name, got.Reason)
		}
		t.Logf("%s: %s", c.name, got.Reason)
	}
	// 24 octaves: about (24-14.8)/24 of the values sit below E4M3's normals.
	c := ChooseFP8Format("g", octaves(logUniform(50000, 24, 5)), 0, e5)
	if s := c.Shares[0].Subnormal; math.Abs(s-(24-E4M3.Octaves())/24) > 0.02 {
		t.Errorf("E4M3 subnormal share %.3f, want about %.3f", s, (24-E4M3.Octaves())/24)
	}
	if math.Abs(c.RangeOctaves-24*0.99) > 0.3 {
		t.Errorf("range %.2f octaves, want about 23.8", c.RangeOctaves)
	}
}

func relu(v []float32) []float32 {
	for i := range v {
		v[i] = max(v[i], 0)
	}
	return v
}

// A clipped amax (a percentile calibrator's) saturates the tail: reported.
func TestChooseFP8FormatSaturation(t *testing.T) {
	c := ChooseFP8Format("x", octaves(gaussian(100000, 6)), 2, FP8FormatOptions{})
	want := math.Erfc(2 / math.Sqrt2) // P(|x| > 2) = 4.55%
	if got := c.Shares[0].Saturated; math.Abs(got-want) > 0.01 {
		t.Errorf("saturated share %.4f, want about %.4f", got, want)
	}
	if c.Scale != 2/448.0 || !strings.Contains(c.Reason, "saturate") {
		t.Errorf("scale %g, reason %q", c.Scale, c.Reason)
	}
}

// Calibration's linear histograms (2048 bins from 0 to amax) resolve about
// 11 octaves: a Gaussian still gets E4M3, a 40-octave tensor at least
// leaves E4M3 (E5M2: the depth of the lowest bin is unknown, see
// OctavesFromHistogram; OctaveHist.Observe on raw values gives FP16).
func TestChooseFP8FormatsFromCalibrationStats(t *testing.T) {
	stats := &calib.Stats{Tensors: map[string]*calib.TensorStats{}}
	for _, c := range []struct {
		name string
		vals []float32
	}{{"act", gaussian(50000, 7)}, {"wide", logUniform(50000, 40, 8)}} {
		ts := &calib.TensorStats{Name: c.name, Hist: &calib.Histogram{}, Min: math.Inf(1), Max: math.Inf(-1)}
		ts.ObserveValues(c.vals)
		stats.Tensors[c.name] = ts
		stats.Order = append(stats.Order, c.name)
	}
	got := ChooseFP8Formats(stats, map[string]float64{}, FP8FormatOptions{AllowE5M2: true})
	if len(got) != 2 || got[0].Format != E4M3 || got[1].Format == E4M3 {
		for _, g := range got {
			t.Logf("%s: %s", g.Tensor, g.Reason)
		}
		t.Fatalf("choices %d", len(got))
	}
}

// bert4's activations (calibration statistics of one outlier input): the
// choice and reason per tensor, as the build report would print them. All
// span less than E4M3's range (the ×50 outlier channels included: the
// input's 1% quantile is 13 octaves below its amax), so all get E4M3.
func TestFP8FormatsBert4(t *testing.T) {
	if testing.Short() {
		t.Skip("bert4 calibration run")
	}
	m := loadBert4(t)
	sess, err := ops.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := calib.Collect(sess, &calib.SliceStream{Batches: bert4Inputs(3, 1, true)}, calib.CollectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	choices := ChooseFP8Formats(stats, nil, FP8FormatOptions{AllowE5M2: true})
	count := map[string]int{}
	for _, c := range choices {
		count[c.Format.Name]++
		if c.Format != E4M3 || c.Tensor == "input" || strings.Contains(c.Tensor, "layer.0/attention/self/query/MatMul") {
			t.Logf("%s: %s", c.Tensor, c.Reason)
		}
	}
	t.Logf("%d tensors: %v", len(choices), count)
	if len(choices) < 50 || count["E4M3"] != len(choices) {
		t.Errorf("choices %v", count)
	}
}
