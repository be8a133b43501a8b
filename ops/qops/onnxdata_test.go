package qops

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/onnx"
	"github.com/kilnml/kiln/ops"
)

// TestONNXBitExact runs ONNX's conformance cases of this package's ops and
// compares outputs bit for bit (the conformance runner compares floats with
// a tolerance and any NaN with any NaN; here every float8/float4/integer
// code must be the one ONNX's reference wrote, and float outputs must have
// the same bits, NaN payloads aside). It is how floatx's codecs are checked
// against ONNX itself.
func TestONNXBitExact(t *testing.T) {
	shared := os.Getenv("KILN_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	dirs, _ := filepath.Glob(filepath.Join(shared, "onnx-node", "test_*"))
	if len(dirs) == 0 {
		t.Skipf("ONNX node cases not found under %s (set KILN_SHARED)", shared)
	}
	mine := regexp.MustCompile(`^test_(cast|castlike|quantizelinear|dequantizelinear|dynamicquantizelinear|qlinear|convinteger|matmulinteger)`)
	ran := 0
	sort.Strings(dirs)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if !mine.MatchString(name) {
			continue
		}
		m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !onlyQops(m) {
			continue // an _expanded case that needs other packages' ops
		}
		ran++
		if err := runBitExact(m, dir); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Logf("%d cases compared bit for bit", ran)
	if ran < 100 {
		t.Errorf("only %d cases ran; the ONNX data looks incomplete", ran)
	}
}

func onlyQops(m *ir.Model) bool {
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "Cast", "CastLike", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
			"QLinearMatMul", "QLinearConv", "ConvInteger", "MatMulInteger":
		default:
			return false
		}
	}
	return true
}

func runBitExact(m *ir.Model, dir string) error {
	s, err := ops.NewSession(m)
	if err != nil {
		return err
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	for _, set := range sets {
		inputs := map[string]*ir.Tensor{}
		for i, in := range s.Inputs() {
			x, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
			if err != nil {
				return err
			}
			inputs[in.Name] = x
		}
		outs, err := s.Run(inputs)
		if err != nil {
			return err
		}
		for i, o := range m.Graph.Outputs {
			want, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return err
			}
			if err := sameBits(outs[o.Name], want); err != nil {
				return fmt.Errorf("output %s: %v", o.Name, err)
			}
		}
	}
	return nil
}

func sameBits(got, want *ir.Tensor) error {
	if got.DType != want.DType || !sameDims(got.Dims, want.Dims) {
		return fmt.Errorf("got %v%v, want %v%v", got.DType, got.Dims, want.DType, want.Dims)
	}
	if want.DType == ir.String {
		for i := range want.Strings {
			if string(got.Strings[i]) != string(want.Strings[i]) {
				return fmt.Errorf("element %d: %q, want %q", i, got.Strings[i], want.Strings[i])
			}
		}
		return nil
	}
	wideFloat := want.DType == ir.Float32 || want.DType == ir.Float64 || want.DType == ir.Float16 || want.DType == ir.BFloat16
	for i := int64(0); i < want.Len(); i++ {
		if wideFloat {
			g, w := got.Float64At(i), want.Float64At(i)
			if math.IsNaN(g) && math.IsNaN(w) {
				continue
			}
			if g != w || math.Signbit(g) != math.Signbit(w) {
				return fmt.Errorf("element %d: %v, want %v", i, g, w)
			}
			continue
		}
		if g, w := rawCode(got, i), rawCode(want, i); g != w {
			return fmt.Errorf("element %d: code %#x (%v), want %#x (%v)", i, g, got.Float64At(i), w, want.Float64At(i))
		}
	}
	return nil
}

// rawCode reads element i's stored bits (packed types unpacked).
func rawCode(t *ir.Tensor, i int64) uint64 {
	bits := int64(t.DType.Bits())
	if bits < 8 {
		per := 8 / bits
		return uint64(t.Data[i/per]>>uint((i%per)*bits)) & (1<<bits - 1)
	}
	var v uint64
	for b := int64(0); b < bits/8; b++ {
		v |= uint64(t.Data[i*bits/8+b]) << (8 * b)
	}
	return v
}
