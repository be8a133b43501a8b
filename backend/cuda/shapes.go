package cudabackend

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/kilnml/kiln/backend/ref"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/gpu/cuda"
	"github.com/kilnml/kiln/ir"
)

// shapeSpec lets a CUDA kernel compute output shapes with the reference
// kernel's inference: the node (as ref encodes it) and, for inputs the step
// does not read at run time (weights packed into the kernel), their dtype
// and dims.
type shapeSpec struct {
	Ref    json.RawMessage `json:"ref"`
	NumIn  int             `json:"num_in"`
	RunIn  []int           `json:"run_in"` // node input index of each runtime input
	Packed []packedInput   `json:"packed,omitempty"`
}

type packedInput struct {
	Index int      `json:"index"`
	DType ir.DType `json:"dtype"`
	Dims  []int64  `json:"dims"`
	Data  []byte   `json:"data,omitempty"` // small integer constants (shapes, axes) that inference reads
}

// newShapeSpec describes layer l whose runtime inputs are runIn.
func newShapeSpec(l *engine.Layer, runIn []int) (shapeSpec, error) {
	_, p, err := ref.New(l.Node, l.Opset)
	if err != nil {
		return shapeSpec{}, err
	}
	s := shapeSpec{Ref: p, NumIn: len(l.Node.Inputs), RunIn: runIn}
	used := map[int]bool{}
	for _, i := range runIn {
		used[i] = true
	}
	for i, name := range l.Node.Inputs {
		if name == "" || used[i] {
			continue
		}
		if l.Const[i] == nil {
			return shapeSpec{}, fmt.Errorf("input %d (%s) is neither read at run time nor constant", i, name)
		}
		c := l.Const[i]
		pi := packedInput{Index: i, DType: c.DType, Dims: c.Dims}
		if c.DType.IsInteger() && c.Len() <= 64 {
			pi.Data = c.Data
		}
		s.Packed = append(s.Packed, pi)
	}
	return s, nil
}

// shaper is the decoded shapeSpec.
type shaper struct {
	spec shapeSpec
	ref  engine.Kernel
	wts  []*ir.Tensor // node inputs that are packed (dims only), by node index
}

func (s shapeSpec) decode() (*shaper, error) {
	dec, err := engine.LookupKernel(ref.KernelID)
	if err != nil {
		return nil, err
	}
	rk, err := dec(s.Ref, nil)
	if err != nil {
		return nil, err
	}
	sh := &shaper{spec: s, ref: rk, wts: make([]*ir.Tensor, s.NumIn)}
	for _, p := range s.Packed {
		if p.Index < 0 || p.Index >= s.NumIn {
			return nil, fmt.Errorf("packed input %d out of range", p.Index)
		}
		sh.wts[p.Index] = &ir.Tensor{DType: p.DType, Dims: p.Dims, Data: p.Data}
	}
	for _, i := range s.RunIn {
		if i < 0 || i >= s.NumIn {
			return nil, fmt.Errorf("runtime input %d out of range", i)
		}
	}
	return sh, nil
}

// Shapes rebuilds the node's full input list and asks the reference.
func (sh *shaper) Shapes(in []*ir.Tensor) ([][]int64, error) {
	if len(in) != len(sh.spec.RunIn) {
		return nil, fmt.Errorf("got %d inputs, want %d", len(in), len(sh.spec.RunIn))
	}
	full := append([]*ir.Tensor(nil), sh.wts...)
	for k, i := range sh.spec.RunIn {
		full[i] = in[k]
	}
	return sh.ref.Shapes(full)
}

// devWeights are a kernel's device copies of its weights, freed when the
// kernel is collected.
type devWeights struct{ ptrs []cuda.DevPtr }

// upload copies host bytes to the device at decode time.
func (w *devWeights) upload(b []byte) (cuda.DevPtr, error) {
	if len(b) == 0 {
		return 0, nil
	}
	g, err := getDevice()
	if err != nil {
		return 0, err
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return 0, err
	}
	defer unbind()
	p, err := g.d.Upload(g.load, b)
	if err != nil {
		return 0, err
	}
	if w.ptrs == nil {
		runtime.SetFinalizer(w, (*devWeights).free)
	}
	w.ptrs = append(w.ptrs, p)
	return p, nil
}

func (w *devWeights) free() {
	g, err := getDevice()
	if err != nil {
		return
	}
	unbind, err := g.d.Bind()
	if err != nil {
		return
	}
	defer unbind()
	for _, p := range w.ptrs {
		cuda.Free(p)
	}
	w.ptrs = nil
}
