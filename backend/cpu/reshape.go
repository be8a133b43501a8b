package cpu

import (
	"fmt"

	"github.com/kilnml/kiln/backend/ref"
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
)

// Reshape, Flatten, Squeeze, Unsqueeze and Identity keep the bytes in
// order: the output is a copy of the input whatever its dtype. Shapes come
// from the reference kernel (run only in the shape pass); Run is one copy
// and allocates nothing, unlike the reference step.
type copyTactic struct{}

func (copyTactic) Name() string { return "copy" }

func (copyTactic) Lower(l *engine.Layer) (*engine.Lowered, error) {
	if len(l.Out) != 1 || l.Out[0] == nil || inDType(l, 0) != l.Out[0].DType || inDType(l, 0) == ir.String {
		return nil, fmt.Errorf("%s: not a same-type copy", l.Node)
	}
	_, params, err := ref.New(l.Node, l.Opset)
	if err != nil {
		return nil, err
	}
	return lowered("cpu.copy", &copyParams{Ref: params}, nil, nil)
}

type copyParams struct {
	Ref []byte `json:"ref"` // the reference step's parameters, for shapes
}

type copyKernel struct{ ref engine.Kernel }

func init() {
	register("cpu.copy", func(p *copyParams, w []*ir.Tensor) (engine.Kernel, error) {
		dec, err := engine.LookupKernel(ref.KernelID)
		if err != nil {
			return nil, err
		}
		k, err := dec(p.Ref, w)
		if err != nil {
			return nil, err
		}
		return &copyKernel{ref: k}, nil
	})
}

func (k *copyKernel) Shapes(in []*ir.Tensor) ([][]int64, error) { return k.ref.Shapes(in) }

func (k *copyKernel) Run(_ *engine.Exec, in, out []*ir.Tensor) error {
	if len(out[0].Data) != len(in[0].Data) {
		return fmt.Errorf("copy of %d bytes into %d", len(in[0].Data), len(out[0].Data))
	}
	copy(out[0].Data, in[0].Data)
	return nil
}
