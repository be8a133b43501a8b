// Package smooth implements SmoothQuant (Xiao et al., 2023) as a graph
// transform run before Q/DQ insertion: activation outliers that live in a
// few channels make per-tensor INT8 activation scales coarse for every
// other channel; dividing the activation by a per-input-channel factor s
// and multiplying the weight's matching rows by s leaves X·W unchanged but
// moves the difficulty into the weights, which are quantized per output
// channel and absorb it easily:
//
//	s_j = max|X_j|^α / max|W_j,:|^(1−α)        (α = 0.5 by default)
//
// The division is folded into the producing LayerNorm's γ and β when every
// reader of X is a smoothed MatMul; otherwise a Mul(X, 1/s) feeds the
// smoothed MatMuls only (the other readers, e.g. a residual, see X).
package smooth

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/quant/calib"
)

// Options controls Apply.
type Options struct {
	// Alpha is the migration strength in [0, 1]: 0 leaves activations as
	// they are, 1 moves all of their range into the weights. 0 means 0.5.
	Alpha float64
	// MaxBatches bounds the statistics pass of Smooth (0: the whole stream).
	MaxBatches int
	// Log receives one line per smoothed activation.
	Log func(format string, args ...any)
	// Skip lists layers (node names) to leave alone, e.g. those kept in
	// float; an activation is smoothed for the other layers reading it.
	Skip map[string]bool
}

// Site is one smoothed activation and the layers whose weights took s.
type Site struct {
	Activation string
	Layers     []string
	Folded     string // the LayerNorm whose γ/β took 1/s, or "" when a Mul was inserted
	MaxBefore  float64
	MaxAfter   float64   // max|X/s|
	Scales     []float64 // s_j per input channel (the activation is divided by them)
}

// Candidates returns the activations SmoothQuant can smooth: inputs 0 of
// MatMul / kiln.MatMul (and Gemm without transA) whose weight is a constant
// matrix [K, N] (Gemm with transB: [N, K]), grouped by activation.
func Candidates(m *ir.Model) map[string][]*ir.Node {
	inits := m.Graph.InitializerMap()
	out := map[string][]*ir.Node{}
	for _, n := range m.Graph.Nodes {
		if _, ok := weightOf(n, inits); ok {
			out[n.Inputs[0]] = append(out[n.Inputs[0]], n)
		}
	}
	return out
}

// candidates is Candidates without the skipped layers.
func candidates(m *ir.Model, skip map[string]bool) map[string][]*ir.Node {
	out := Candidates(m)
	for x, layers := range out {
		kept := layers[:0]
		for _, n := range layers {
			if !skip[n.Name] {
				kept = append(kept, n)
			}
		}
		if len(kept) == 0 {
			delete(out, x)
		} else {
			out[x] = kept
		}
	}
	return out
}

// weightOf returns the constant weight of a smoothable layer.
func weightOf(n *ir.Node, inits map[string]*ir.Tensor) (*ir.Tensor, bool) {
	if len(n.Inputs) < 2 || !(n.Domain == "" || n.Domain == "kiln") {
		return nil, false
	}
	switch n.OpType {
	case "MatMul":
	case "Gemm":
		if ta, _ := n.AttrInt("transA", 0); ta != 0 {
			return nil, false
		}
	default:
		return nil, false
	}
	w := inits[n.Inputs[1]]
	if w == nil || w.DType != ir.Float32 || w.Rank() != 2 {
		return nil, false
	}
	return w, true
}

// transB reports whether the weight is stored [N, K].
func transB(n *ir.Node) bool {
	tb, _ := n.AttrInt("transB", 0)
	return n.OpType == "Gemm" && tb != 0
}

// ChannelMax runs the model over src and returns, for each named tensor,
// max |x| per channel of its last axis.
func ChannelMax(m *ir.Model, src calib.Stream, names []string, maxBatches int) (map[string][]float64, error) {
	sess, err := ops.NewSession(m)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string][]float64{}
	var obsErr error
	observe := func(name string, t *ir.Tensor) {
		if !want[name] || t.Rank() == 0 || !t.DType.IsFloat() {
			return
		}
		c := t.Dims[t.Rank()-1]
		mx := out[name]
		if mx == nil {
			mx = make([]float64, c)
			out[name] = mx
		}
		if int64(len(mx)) != c {
			obsErr = fmt.Errorf("smooth: %s has %d channels in one batch and %d in another", name, len(mx), c)
			return
		}
		for i := range t.Len() {
			if v := math.Abs(t.Float64At(i)); v > mx[i%c] && !math.IsInf(v, 0) {
				mx[i%c] = v
			}
		}
	}
	for k := 0; maxBatches <= 0 || k < maxBatches; k++ {
		b, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("smooth: batch %d: %w", k, err)
		}
		if _, err := sess.RunObserved(b, observe); err != nil {
			return nil, fmt.Errorf("smooth: batch %d: %w", k, err)
		}
		if obsErr != nil {
			return nil, obsErr
		}
	}
	if len(out) == 0 {
		return nil, errors.New("smooth: the statistics pass saw no batch")
	}
	return out, nil
}

// Smooth collects channel maxima over src and applies SmoothQuant to m in
// place.
func Smooth(m *ir.Model, src calib.Stream, opt Options) ([]Site, error) {
	cands := candidates(m, opt.Skip)
	names := make([]string, 0, len(cands))
	for n := range cands {
		names = append(names, n)
	}
	sort.Strings(names)
	mx, err := ChannelMax(m, src, names, opt.MaxBatches)
	if err != nil {
		return nil, err
	}
	return Apply(m, mx, opt)
}

// Apply smooths every candidate activation with channel maxima in act.
func Apply(m *ir.Model, act map[string][]float64, opt Options) ([]Site, error) {
	alpha := opt.Alpha
	if alpha == 0 {
		alpha = 0.5
	}
	if alpha < 0 || alpha > 1 {
		return nil, fmt.Errorf("smooth: alpha %g is not in [0, 1]", alpha)
	}
	g := m.Graph
	inits := g.InitializerMap()
	cons := g.Consumers()
	prod := g.Producers()
	outs := map[string]bool{}
	for _, o := range g.Outputs {
		outs[o.Name] = true
	}
	cands := candidates(m, opt.Skip)
	names := make([]string, 0, len(cands))
	for n := range cands {
		names = append(names, n)
	}
	sort.Strings(names)
	// A weight shared by layers reading different activations cannot take
	// two different factors: those activations are left alone.
	wUsers := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			wUsers[in]++
		}
	}
	var sites []Site
	for _, x := range names {
		layers := cands[x]
		xmax := act[x]
		if xmax == nil {
			continue
		}
		k := int64(len(xmax))
		ok := true
		wmax := make([]float64, k)
		for _, n := range layers {
			w := inits[n.Inputs[1]]
			rows, cols := w.Dims[0], w.Dims[1]
			if transB(n) {
				rows, cols = cols, rows
			}
			if rows != k || wUsers[n.Inputs[1]] != 1 {
				ok = false
				break
			}
			for j := range rows {
				for c := range cols {
					idx := j*cols + c
					if transB(n) {
						idx = c*rows + j
					}
					wmax[j] = math.Max(wmax[j], math.Abs(w.Float64At(idx)))
				}
			}
		}
		if !ok {
			continue
		}
		s := make([]float64, k)
		site := Site{Activation: x, Scales: s}
		for j := range s {
			s[j] = 1
			if xmax[j] > 0 && wmax[j] > 0 {
				s[j] = math.Pow(xmax[j], alpha) / math.Pow(wmax[j], 1-alpha)
			}
			if !(s[j] > 0) || math.IsInf(s[j], 0) {
				s[j] = 1
			}
			site.MaxBefore = math.Max(site.MaxBefore, xmax[j])
			site.MaxAfter = math.Max(site.MaxAfter, xmax[j]/s[j])
		}
		// Weights: row j times s_j (a fresh tensor: the initializer may be
		// shared with another model through Clone's shallow copies).
		for _, n := range layers {
			w := inits[n.Inputs[1]]
			nw := ir.NewTensor(ir.Float32, w.Dims)
			nw.Name = w.Name
			cols := w.Dims[1]
			for i := range w.Len() {
				j := i / cols // row of [K, N]; column of [N, K]
				if transB(n) {
					j = i % cols
				}
				nw.SetFloat64At(i, w.Float64At(i)*s[j])
			}
			replaceInit(g, nw)
			inits[nw.Name] = nw
			site.Layers = append(site.Layers, n.Name)
		}
		// Activations: fold 1/s into the LayerNorm, or insert a Mul.
		if ln := prod[x]; !outs[x] && len(cons[x]) == len(layers) && foldable(ln, inits, wUsers, k) {
			for _, in := range ln.Inputs[1:] {
				if in == "" {
					continue
				}
				p := inits[in]
				np := ir.NewTensor(ir.Float32, p.Dims)
				np.Name = p.Name
				for j := range p.Len() {
					np.SetFloat64At(j, p.Float64At(j)/s[j])
				}
				replaceInit(g, np)
				inits[np.Name] = np
			}
			site.Folded = ln.Name
		} else {
			inv := ir.NewTensor(ir.Float32, []int64{k})
			for j := range s {
				inv.SetFloat64At(int64(j), 1/s[j])
			}
			inv.Name = unique(g, x+"_smooth_scale")
			g.Initializers = append(g.Initializers, inv)
			xs := unique(g, x+"_smoothed")
			mul := &ir.Node{Name: unique(g, x+"_smooth"), OpType: "Mul", Inputs: []string{x, inv.Name}, Outputs: []string{xs}}
			first := len(g.Nodes)
			for _, n := range layers {
				n.Inputs[0] = xs
				first = min(first, slices.Index(g.Nodes, n))
			}
			g.Nodes = slices.Insert(g.Nodes, first, mul)
		}
		if opt.Log != nil {
			opt.Log("SmoothQuant %s (α=%.2f): max|x| %.4g -> %.4g over %d layers", x, alpha, site.MaxBefore, site.MaxAfter, len(layers))
		}
		sites = append(sites, site)
	}
	return sites, nil
}

// foldable: ln is a LayerNorm (ONNX or kiln) over the last axis whose γ and
// β are constants of k elements read by it alone.
func foldable(ln *ir.Node, inits map[string]*ir.Tensor, users map[string]int, k int64) bool {
	if ln == nil || len(ln.Inputs) < 2 || !((ln.Domain == "" && ln.OpType == "LayerNormalization") || (ln.Domain == "kiln" && ln.OpType == "LayerNorm")) {
		return false
	}
	if ax, _ := ln.AttrInt("axis", -1); ax != -1 {
		return false
	}
	for _, in := range ln.Inputs[1:] {
		if in == "" {
			continue
		}
		p := inits[in]
		if p == nil || p.DType != ir.Float32 || p.Len() != k || users[in] != 1 {
			return false
		}
	}
	return true
}

func replaceInit(g *ir.Graph, t *ir.Tensor) {
	for i, old := range g.Initializers {
		if old.Name == t.Name {
			g.Initializers[i] = t
			return
		}
	}
}

func unique(g *ir.Graph, base string) string {
	used := map[string]bool{}
	for _, t := range g.Initializers {
		used[t.Name] = true
	}
	for _, n := range g.Nodes {
		used[n.Name] = true
		for _, o := range n.Outputs {
			used[o] = true
		}
	}
	for _, in := range g.Inputs {
		used[in.Name] = true
	}
	name := base
	for i := 1; used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}
