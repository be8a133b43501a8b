package cpu

import (
	"encoding/json"
	"math"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops/kiln"
	"github.com/kilnml/kiln/ops/kilnq"
)

// actParam is a kiln.Activation in plan parameters. Its floats are stored
// as bit patterns: Clip's default bounds are ±Inf, which JSON cannot hold.
type actParam kiln.Activation

type actJSON struct {
	Kind  string `json:"kind,omitempty"`
	Alpha uint32 `json:"alpha,omitempty"`
	Beta  uint32 `json:"beta,omitempty"`
}

func (a actParam) MarshalJSON() ([]byte, error) {
	return json.Marshal(actJSON{a.Kind, math.Float32bits(a.Alpha), math.Float32bits(a.Beta)})
}

func (a *actParam) UnmarshalJSON(b []byte) error {
	var j actJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = actParam{Kind: j.Kind, Alpha: math.Float32frombits(j.Alpha), Beta: math.Float32frombits(j.Beta)}
	return nil
}

func (a actParam) get() kiln.Activation { return kiln.Activation(a) }

// quantParam is a kilnq.Layer in plan parameters.
type quantParam struct{ kilnq.Layer }

type quantJSON struct {
	XScale  float32   `json:"x_scale"`
	XZero   int32     `json:"x_zero,omitempty"`
	WScales []float32 `json:"w_scales"`
	YScale  float32   `json:"y_scale"`
	YZero   int32     `json:"y_zero,omitempty"`
	Act     actParam  `json:"act"`
	OutType ir.DType  `json:"out_type"`
	ZScale  float32   `json:"z_scale,omitempty"` // quantized residual (kilnq's z_scale/z_zero)
	ZZero   int32     `json:"z_zero,omitempty"`
	MScale  float32   `json:"m_scale,omitempty"` // mid quantization (kilnq's m_scale/m_zero; plan format 4)
	MZero   int32     `json:"m_zero,omitempty"`
}

func (q *quantParam) MarshalJSON() ([]byte, error) {
	l := &q.Layer
	return json.Marshal(quantJSON{l.XScale, l.XZero, l.WScales, l.YScale, l.YZero, actParam(l.Act), l.OutType, l.ZScale, l.ZZero, l.MScale, l.MZero})
}

func (q *quantParam) UnmarshalJSON(b []byte) error {
	var j quantJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	q.Layer = kilnq.Layer{XScale: j.XScale, XZero: j.XZero, WScales: j.WScales, YScale: j.YScale, YZero: j.YZero,
		Act: j.Act.get(), OutType: j.OutType, ZScale: j.ZScale, ZZero: j.ZZero, MScale: j.MScale, MZero: j.MZero}
	return nil
}

// layer returns the quantized semantics, nil for float layers.
func (q *quantParam) layer() *kilnq.Layer {
	if q == nil {
		return nil
	}
	return &q.Layer
}
