package nn

import (
	"sort"
	"strings"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

func init() {
	ops.Register(&ops.Op{Type: "Einsum", MinOpset: 12, Run: einsum, Infer: inferEinsum})
}

// einsumSpec is a parsed equation bound to input ranks. Labels are small
// integers: letters first, then one per ellipsis axis.
type einsumSpec struct {
	inputs [][]int // per input, the label of each axis
	output []int   // label of each output axis
	nLabel int
}

// parseEinsum parses an equation such as "...ij,...jk->...ik" for inputs of
// the given ranks. An implicit output lists the ellipsis axes, then the
// letters used exactly once, in alphabetical order.
func parseEinsum(a attrGetter, eq string, ranks []int) (*einsumSpec, error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(ranks) {
		return nil, a.Errorf("equation %q has %d input terms but the node has %d inputs", eq, len(terms), len(ranks))
	}
	letter := map[byte]int{}
	var letters []byte
	ellRank := 0
	type term struct {
		pre, post []byte // letters before and after the ellipsis
		ell       bool
	}
	parse := func(s string) (term, error) {
		var t term
		pre, post, ell := strings.Cut(s, "...")
		if strings.Contains(post, "...") || strings.Contains(pre, ".") || strings.Contains(post, ".") {
			return t, a.Errorf("equation %q: malformed term %q", eq, s)
		}
		t.pre, t.post, t.ell = []byte(pre), []byte(post), ell
		for _, ch := range append(append([]byte{}, t.pre...), t.post...) {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z') {
				return t, a.Errorf("equation %q: %q is not a letter", eq, ch)
			}
		}
		return t, nil
	}
	var ts []term
	count := map[byte]int{}
	for i, s := range terms {
		t, err := parse(s)
		if err != nil {
			return nil, err
		}
		n := len(t.pre) + len(t.post)
		if t.ell {
			if ranks[i] < n {
				return nil, a.Errorf("equation %q: term %q needs rank at least %d, input %d has %d", eq, s, n, i, ranks[i])
			}
			ellRank = max(ellRank, ranks[i]-n)
		} else if ranks[i] != n {
			return nil, a.Errorf("equation %q: term %q has %d labels, input %d has rank %d", eq, s, n, i, ranks[i])
		}
		for _, ch := range append(append([]byte{}, t.pre...), t.post...) {
			if _, ok := letter[ch]; !ok {
				letter[ch] = len(letters)
				letters = append(letters, ch)
			}
			count[ch]++
		}
		ts = append(ts, t)
	}
	nl := len(letters)
	ell := func(n int) []int { // labels of the last n ellipsis axes
		out := make([]int, n)
		for k := range out {
			out[k] = nl + ellRank - n + k
		}
		return out
	}
	spec := &einsumSpec{nLabel: nl + ellRank}
	for i, t := range ts {
		var labels []int
		for _, ch := range t.pre {
			labels = append(labels, letter[ch])
		}
		if t.ell {
			labels = append(labels, ell(ranks[i]-len(t.pre)-len(t.post))...)
		}
		for _, ch := range t.post {
			labels = append(labels, letter[ch])
		}
		spec.inputs = append(spec.inputs, labels)
	}
	if explicit {
		t, err := parse(rhs)
		if err != nil {
			return nil, err
		}
		seen := map[byte]bool{}
		for _, ch := range append(append([]byte{}, t.pre...), t.post...) {
			if _, ok := letter[ch]; !ok {
				return nil, a.Errorf("equation %q: output label %q appears in no input", eq, ch)
			}
			if seen[ch] {
				return nil, a.Errorf("equation %q: output label %q repeats", eq, ch)
			}
			seen[ch] = true
		}
		for _, ch := range t.pre {
			spec.output = append(spec.output, letter[ch])
		}
		if t.ell {
			spec.output = append(spec.output, ell(ellRank)...)
		} else if ellRank > 0 {
			return nil, a.Errorf("equation %q: the inputs have ellipsis axes but the output has no ellipsis", eq)
		}
		for _, ch := range t.post {
			spec.output = append(spec.output, letter[ch])
		}
		return spec, nil
	}
	spec.output = ell(ellRank)
	var once []byte
	for ch, n := range count {
		if n == 1 {
			once = append(once, ch)
		}
	}
	sort.Slice(once, func(i, j int) bool { return once[i] < once[j] })
	for _, ch := range once {
		spec.output = append(spec.output, letter[ch])
	}
	return spec, nil
}

func inferEinsum(c *ops.InferCtx) error {
	eq := c.String("equation", "")
	if err := c.Err(); err != nil {
		return err
	}
	var ranks []int
	for i := range c.Node.Inputs {
		t, err := c.Input(i)
		if err != nil {
			return err
		}
		if !t.HasShape {
			c.Out[0] = &ir.Type{DType: t.DType}
			return nil
		}
		ranks = append(ranks, len(t.Shape))
	}
	if len(ranks) == 0 {
		return c.Errorf("needs at least one input")
	}
	spec, err := parseEinsum(c, eq, ranks)
	if err != nil {
		return err
	}
	size := make([]ir.Dim, spec.nLabel)
	set := make([]bool, spec.nLabel)
	for i, labels := range spec.inputs {
		for k, l := range labels {
			d := c.In[i].Shape[k]
			switch {
			case !set[l] || (size[l].Known() && size[l].Value == 1):
				size[l], set[l] = d, true
			case d.Known() && size[l].Known() && d.Value != 1 && d.Value != size[l].Value:
				return c.Errorf("label size mismatch: %d vs %d", d.Value, size[l].Value)
			case !size[l].Known() && d.Known() && d.Value != 1:
				size[l] = d
			}
		}
	}
	out := make(ir.Shape, len(spec.output))
	for k, l := range spec.output {
		out[k] = size[l]
	}
	c.Out[0] = ir.TensorType(c.In[0].DType, out)
	return nil
}

func einsum(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	eq := c.String("equation", "")
	if err := c.Err(); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, c.Errorf("needs at least one input")
	}
	var ranks []int
	for i, t := range in {
		if t == nil {
			return nil, c.Errorf("input %d is missing", i)
		}
		if t.DType != in[0].DType {
			return nil, c.Errorf("input %d is %s but input 0 is %s", i, t.DType, in[0].DType)
		}
		ranks = append(ranks, t.Rank())
	}
	dt := in[0].DType
	if !dt.IsFloat() && !dt.IsInteger() {
		return nil, c.Errorf("unsupported element type %s", dt)
	}
	spec, err := parseEinsum(c, eq, ranks)
	if err != nil {
		return nil, err
	}
	// Label sizes; size-1 axes broadcast (ellipsis axes, as numpy does).
	size := make([]int64, spec.nLabel)
	for l := range size {
		size[l] = -1
	}
	for i, labels := range spec.inputs {
		for k, l := range labels {
			d := in[i].Dims[k]
			switch {
			case size[l] < 0 || size[l] == 1:
				size[l] = d
			case d != 1 && d != size[l]:
				return nil, c.Errorf("equation %q: axis %d of input %d has size %d, another axis with its label has %d",
					eq, k, i, d, size[l])
			}
		}
	}
	// Loop order: output labels, then the summed ones.
	inOut := make([]bool, spec.nLabel)
	order := append([]int{}, spec.output...)
	for _, l := range spec.output {
		inOut[l] = true
	}
	for l := 0; l < spec.nLabel; l++ {
		if !inOut[l] {
			order = append(order, l)
		}
	}
	outDims := make([]int64, len(spec.output))
	for k, l := range spec.output {
		outDims[k] = size[l]
	}
	if err := checkSize(c, outDims); err != nil {
		return nil, err
	}
	total := int64(1)
	for _, l := range order {
		total *= size[l]
		if total > 1<<34 {
			return nil, c.Errorf("equation %q: %v is too much work for the reference kernel", eq, size)
		}
	}
	// stride[i][j]: step of input i's flat index when loop label order[j] advances
	nIn := len(in)
	stride := make([][]int64, nIn)
	vals := make([][]float64, nIn)
	for i, labels := range spec.inputs {
		st := ops.Strides(in[i].Dims)
		stride[i] = make([]int64, len(order))
		for j, l := range order {
			for k, lk := range labels {
				if lk == l && in[i].Dims[k] != 1 {
					stride[i][j] += st[k] // repeated labels walk the diagonal
				}
			}
		}
		vals[i] = floats(in[i])
	}
	y := make([]float64, prod(outDims))
	if total > 0 {
		nOut := int64(len(y))
		perOut := total / max(nOut, 1)
		pos := make([]int64, len(order))
		off := make([]int64, nIn)
		for o := int64(0); o < nOut; o++ {
			var acc float64
			for s := int64(0); s < perOut; s++ {
				p := 1.0
				for i := range vals {
					p *= vals[i][off[i]]
				}
				acc += p
				// advance the odometer (last label fastest)
				for j := len(order) - 1; j >= 0; j-- {
					pos[j]++
					for i := range off {
						off[i] += stride[i][j]
					}
					if pos[j] < size[order[j]] {
						break
					}
					for i := range off {
						off[i] -= stride[i][j] * pos[j]
					}
					pos[j] = 0
				}
			}
			y[o] = acc
		}
	}
	return []*ir.Tensor{fromFloats(dt, outDims, y)}, nil
}
