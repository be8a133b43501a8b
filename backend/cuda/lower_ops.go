package cudabackend

import (
	"encoding/json"
	"fmt"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

var binOps = map[string]int{"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Max": 4, "Min": 5}

func isFloat16ish(d ir.DType) bool { return d == ir.Float16 || d == ir.BFloat16 }

// lowerOp lowers the non-GEMM ops kiln runs on the GPU.
func lowerOp(l *engine.Layer) (*engine.Lowered, error) {
	n := l.Node
	if len(l.In) == 0 || l.In[0] == nil || len(l.Out) == 0 || l.Out[0] == nil {
		return nil, fmt.Errorf("types unknown")
	}
	for i, o := range n.Outputs {
		if i > 0 && o != "" {
			return nil, fmt.Errorf("only the first output is supported")
		}
	}
	in := l.In[0].DType
	p := opParams{In: in, Out: l.Out[0].DType, ConstArg: -1, Axis: -1}
	runIn := []int{0}
	var weights []*ir.Tensor
	attrF := func(name string, def float32) float32 { v, _ := n.AttrFloat(name, def); return v }
	switch n.OpType {
	case "Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish", "Gelu", "Clip":
		p.Kind = "act"
		if !(in == ir.Float32 || isFloat16ish(in) || (in == ir.Int8 && n.OpType == "Relu")) {
			return nil, fmt.Errorf("%s on %s", n.OpType, in)
		}
		kind := n.OpType
		switch n.OpType {
		case "LeakyRelu":
			p.ActA = attrF("alpha", 0.01)
		case "HardSigmoid":
			p.ActA, p.ActB = attrF("alpha", 0.2), attrF("beta", 0.5)
		case "Gelu":
			if a, _ := n.AttrString("approximate", "none"); a == "tanh" {
				kind = "GeluTanh"
			}
		case "Clip":
			lo, hi := float32(-3.4028235e38), float32(3.4028235e38)
			if l.Opset < 11 {
				lo, hi = attrF("min", lo), attrF("max", hi)
			} else {
				for i := 1; i < len(n.Inputs) && i < 3; i++ {
					if n.Inputs[i] == "" {
						continue
					}
					if l.Const[i] == nil || l.Const[i].Len() != 1 {
						return nil, fmt.Errorf("Clip with runtime bounds")
					}
					v := float32(l.Const[i].Float64At(0))
					if i == 1 {
						lo = v
					} else {
						hi = v
					}
				}
			}
			p.ActA, p.ActB = lo, hi
		}
		p.Act = actCodes[kind]
	case "Add", "Sub", "Mul", "Div", "Max", "Min":
		if len(n.Inputs) != 2 || !(in == ir.Float32 || isFloat16ish(in)) || l.In[1] == nil || l.In[1].DType != in {
			return nil, fmt.Errorf("%s needs two float32, float16 or bfloat16 inputs of one type", n.OpType)
		}
		p.Kind, p.BinOp = "binary", binOps[n.OpType]
		switch {
		case l.Const[0] != nil && l.Const[1] != nil:
			return nil, fmt.Errorf("constant operands are folded")
		case l.Const[0] != nil:
			p.ConstArg, runIn, weights = 0, []int{1}, []*ir.Tensor{l.Const[0]}
		case l.Const[1] != nil:
			p.ConstArg, weights = 1, []*ir.Tensor{l.Const[1]}
		default:
			runIn = []int{0, 1}
		}
	case "MaxPool", "AveragePool":
		if l.In[0].HasShape && len(l.In[0].Shape) != 4 {
			return nil, fmt.Errorf("only 2D pooling")
		}
		if n.OpType == "MaxPool" && in != ir.Float32 && in != ir.Int8 && in != ir.Uint8 && in != ir.Float8E4M3FN && !isFloat16ish(in) {
			return nil, fmt.Errorf("MaxPool on %s", in)
		}
		if n.OpType == "AveragePool" && in != ir.Float32 && !isFloat16ish(in) {
			return nil, fmt.Errorf("AveragePool on %s", in)
		}
		switch ap, _ := n.AttrString("auto_pad", "NOTSET"); ap {
		case "NOTSET", "VALID", "":
		case "SAME_UPPER", "SAME_LOWER":
			p.AutoPad = ap
		default:
			return nil, fmt.Errorf("auto_pad %s", ap)
		}
		if so, _ := n.AttrInt("storage_order", 0); so != 0 {
			return nil, fmt.Errorf("storage_order 1")
		}
		ks, _ := n.AttrInts("kernel_shape", nil)
		st, _ := n.AttrInts("strides", []int64{1, 1})
		pd, _ := n.AttrInts("pads", []int64{0, 0, 0, 0})
		dl, _ := n.AttrInts("dilations", []int64{1, 1})
		if len(ks) != 2 || len(st) != 2 || len(pd) != 4 || len(dl) != 2 {
			return nil, fmt.Errorf("pooling attributes of the wrong length")
		}
		p.Kind = "maxpool"
		if n.OpType == "AveragePool" {
			p.Kind = "avgpool"
			if dl[0] != 1 || dl[1] != 1 {
				return nil, fmt.Errorf("dilated AveragePool")
			}
			cp, _ := n.AttrInt("count_include_pad", 0)
			p.CountPad = cp != 0
		}
		p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.DH, p.DW = int(ks[0]), int(ks[1]), int(st[0]), int(st[1]), int(pd[0]), int(pd[1]), int(dl[0]), int(dl[1])
	case "GlobalAveragePool":
		if (in != ir.Float32 && !isFloat16ish(in)) || (l.In[0].HasShape && len(l.In[0].Shape) != 4) {
			return nil, fmt.Errorf("GlobalAveragePool needs float32 or 16-bit float NCHW")
		}
		p.Kind = "gavgpool"
	case "Softmax":
		if in != ir.Float32 || !l.In[0].HasShape {
			return nil, fmt.Errorf("Softmax needs float32 of known rank")
		}
		r := int64(len(l.In[0].Shape))
		def := int64(-1)
		if l.Opset < 13 {
			def = 1
		}
		ax, _ := n.AttrInt("axis", def)
		if ax < 0 {
			ax += r
		}
		if l.Opset >= 13 && ax != r-1 {
			return nil, fmt.Errorf("Softmax over axis %d of rank %d (only the last)", ax, r)
		}
		if ax < 0 || ax >= r {
			return nil, fmt.Errorf("Softmax axis %d of rank %d", ax, r)
		}
		// before opset 13 the input is taken as 2D, [dims before axis] ×
		// [the rest]: rows of everything from axis on (SqueezeNet's
		// [N,1000,1,1] at axis 1)
		p.Kind, p.Axis = "softmax", int(ax)
	case "LayerNormalization", "LayerNorm": // the ONNX op and kiln.LayerNorm (same attributes)
		if in != ir.Float32 || !l.In[0].HasShape {
			return nil, fmt.Errorf("LayerNormalization needs float32 of known rank")
		}
		r := int64(len(l.In[0].Shape))
		ax, _ := n.AttrInt("axis", -1)
		if ax < 0 {
			ax += r
		}
		if ax != r-1 {
			return nil, fmt.Errorf("LayerNormalization over axis %d (only the last)", ax)
		}
		p.Kind, p.Eps = "layernorm", attrF("epsilon", 1e-5)
		for i := 1; i < len(n.Inputs) && i < 3; i++ {
			if n.Inputs[i] == "" {
				continue
			}
			c := l.Const[i]
			if c == nil || c.DType != ir.Float32 || c.Rank() != 1 {
				return nil, fmt.Errorf("LayerNormalization with runtime or non-1D scale/bias")
			}
			weights = append(weights, c)
			if i == 1 {
				p.HasG = true
			} else {
				p.HasB2 = true
			}
		}
	case "QuantizeLinear", "DequantizeLinear":
		if len(n.Inputs) < 2 || l.Const[1] == nil || l.Const[1].DType != ir.Float32 {
			return nil, fmt.Errorf("%s needs a constant float32 scale", n.OpType)
		}
		if bs, _ := n.AttrInt("block_size", 0); bs != 0 {
			return nil, fmt.Errorf("blocked quantization")
		}
		q := p.Out
		p.Kind = "quant"
		if n.OpType == "DequantizeLinear" {
			p.Kind, q = "dequant", in
			if p.Out != ir.Float32 {
				return nil, fmt.Errorf("DequantizeLinear to %s", p.Out)
			}
		} else if in != ir.Float32 {
			return nil, fmt.Errorf("QuantizeLinear from %s", in)
		}
		if q != ir.Int8 && q != ir.Uint8 && q != ir.Float8E4M3FN {
			return nil, fmt.Errorf("%s with %s", n.OpType, q)
		}
		if sat, _ := n.AttrInt("saturate", 1); sat != 1 {
			return nil, fmt.Errorf("saturate=0")
		}
		sc := l.Const[1]
		weights = append(weights, sc)
		if sc.Len() > 1 {
			if sc.Rank() != 1 || !l.In[0].HasShape {
				return nil, fmt.Errorf("scale of shape %v", sc.Dims)
			}
			r := int64(len(l.In[0].Shape))
			ax, _ := n.AttrInt("axis", 1)
			if ax < 0 {
				ax += r
			}
			if ax < 0 || ax >= r {
				return nil, fmt.Errorf("axis %d", ax)
			}
			p.Axis = int(ax)
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			z := l.Const[2]
			if z == nil || z.Len() != sc.Len() {
				return nil, fmt.Errorf("runtime or mis-shaped zero point")
			}
			for i := int64(0); i < z.Len(); i++ {
				if z.Float64At(i) != 0 && q == ir.Float8E4M3FN {
					return nil, fmt.Errorf("float8 zero point")
				}
			}
			if q != ir.Float8E4M3FN {
				weights = append(weights, z)
				p.HasZero = true
			}
		}
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity":
		// a device-to-device copy: consecutive CUDA steps stay on the GPU;
		// the shape (input 1 of Reshape, Squeeze, Unsqueeze) is read by the
		// shape pass on the host
		if in == ir.String || in.IsSubByte() {
			return nil, fmt.Errorf("%s of %s", n.OpType, in)
		}
		p.Kind = "copy"
		for i := 1; i < len(n.Inputs); i++ {
			if n.Inputs[i] != "" && l.Const[i] == nil {
				runIn = append(runIn, i)
			}
		}
	case "Concat":
		// one strided device copy per input into its slot of the output
		// (NCHW inputs; an NHWC one is relaid out first)
		if in == ir.String || in.IsSubByte() {
			return nil, fmt.Errorf("Concat of %s", in)
		}
		if !l.Out[0].HasShape {
			return nil, fmt.Errorf("Concat with an output of unknown rank")
		}
		rank := len(l.Out[0].Shape)
		axis, _ := n.AttrInt("axis", 0)
		if axis < 0 {
			axis += int64(rank)
		}
		if axis < 0 || axis >= int64(rank) {
			return nil, fmt.Errorf("Concat axis %d of rank %d", axis, rank)
		}
		p.Kind, p.Axis, runIn = "concat", int(axis), nil
		for i := range n.Inputs {
			switch {
			case n.Inputs[i] == "" || l.In[i] == nil:
				return nil, fmt.Errorf("Concat input %d is missing or untyped", i)
			case l.Const[i] != nil:
				return nil, fmt.Errorf("Concat of a constant (input %d)", i)
			case l.In[i].DType != in:
				return nil, fmt.Errorf("Concat of %s and %s", in, l.In[i].DType)
			}
			runIn = append(runIn, i)
		}
	case "Transpose":
		// a gather over permuted strides (rank <= 6; NCHW input)
		if !l.In[0].HasShape || len(l.In[0].Shape) > 6 {
			return nil, fmt.Errorf("Transpose of unknown rank or rank above 6")
		}
		if sz := in.ByteSize(1); in == ir.String || in.IsSubByte() || (sz != 1 && sz != 2 && sz != 4 && sz != 8) {
			return nil, fmt.Errorf("Transpose of %s", in)
		}
		r := len(l.In[0].Shape)
		perm := make([]int, r)
		for i := range perm {
			perm[i] = r - 1 - i // the default reverses the axes
		}
		if a := n.Attr("perm"); a != nil {
			if len(a.Ints) != r {
				return nil, fmt.Errorf("Transpose perm %v of rank %d", a.Ints, r)
			}
			seen := make([]bool, r)
			for i, v := range a.Ints {
				if v < 0 || v >= int64(r) || seen[v] {
					return nil, fmt.Errorf("Transpose perm %v is not a permutation", a.Ints)
				}
				seen[v], perm[i] = true, int(v)
			}
		}
		p.Kind, p.Perm = "transpose", perm
	case "Cast":
		ok := (in == ir.Float32 && isFloat16ish(p.Out)) || (isFloat16ish(in) && p.Out == ir.Float32)
		if !ok {
			return nil, fmt.Errorf("Cast %s to %s", in, p.Out)
		}
		p.Kind = "cast"
	default:
		return nil, fmt.Errorf("no CUDA kernel for %s", n.OpType)
	}
	var err error
	if p.Shape, err = newShapeSpec(l, runIn); err != nil {
		return nil, err
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &engine.Lowered{Kernel: KernelOp, Params: params, Weights: weights, Inputs: runIn}, nil
}
