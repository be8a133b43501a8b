package nn

import (
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// RotaryEmbedding (opset 23) rotates the first rotary_embedding_dim values
// of every head by position-dependent angles: pairs (x1, x2) become
// (x1·cos − x2·sin, x2·cos + x1·sin). Pairs are the two halves of the
// rotated part, or neighbours when interleaved.

func init() {
	ops.Register(&ops.Op{Type: "RotaryEmbedding", MinOpset: 23, Run: rotary, Infer: ops.SameAsInput(0)})
}

func rotary(c *ops.Ctx, in []*ir.Tensor) ([]*ir.Tensor, error) {
	x, err := needFloat(c, in, 0, "X")
	if err != nil {
		return nil, err
	}
	cosT, err := needFloat(c, in, 1, "cos_cache")
	if err != nil {
		return nil, err
	}
	sinT, err := needFloat(c, in, 2, "sin_cache")
	if err != nil {
		return nil, err
	}
	pos := opt(in, 3)
	interleaved := c.Int("interleaved", 0) != 0
	numHeads := c.Int("num_heads", 0)
	rd := c.Int("rotary_embedding_dim", 0)
	if err := c.Err(); err != nil {
		return nil, err
	}
	// View X as [b, s, h, d] through strides, whatever its layout.
	var B, S, H, D int64
	var sb, ss, sh int64
	switch x.Rank() {
	case 4: // [b, h, s, d]
		B, H, S, D = x.Dims[0], x.Dims[1], x.Dims[2], x.Dims[3]
		sb, sh, ss = H*S*D, S*D, D
	case 3: // [b, s, h·d]
		if numHeads <= 0 || x.Dims[2]%numHeads != 0 {
			return nil, c.Errorf("3-D X %v needs num_heads dividing its last axis (num_heads %d)", x.Dims, numHeads)
		}
		B, S, H, D = x.Dims[0], x.Dims[1], numHeads, x.Dims[2]/numHeads
		sb, ss, sh = S*H*D, H*D, D
	default:
		return nil, c.Errorf("X has rank %d, want 3 or 4", x.Rank())
	}
	if rd == 0 {
		rd = D
	}
	if rd < 0 || rd > D || rd%2 != 0 {
		return nil, c.Errorf("rotary_embedding_dim %d must be even and at most the head size %d", rd, D)
	}
	half := rd / 2
	// cosAt(b, s) is the offset of the [half] row of angles for (b, s).
	var rowOf func(b, s int64) int64
	if pos != nil {
		if !pos.DType.IsInteger() || pos.Rank() != 2 || pos.Dims[0] != B || pos.Dims[1] != S {
			return nil, c.Errorf("position_ids has dims %v (%s), want int64 [%d %d]", pos.Dims, pos.DType, B, S)
		}
		if cosT.Rank() != 2 || cosT.Dims[1] != half {
			return nil, c.Errorf("cos_cache has dims %v, want [max_position, %d]", cosT.Dims, half)
		}
		ids := pos.Int64s()
		for _, p := range ids {
			if p < 0 || p >= cosT.Dims[0] {
				return nil, c.Errorf("position id %d is outside cos_cache's %d positions", p, cosT.Dims[0])
			}
		}
		rowOf = func(b, s int64) int64 { return ids[b*S+s] * half }
	} else {
		if cosT.Rank() != 3 || cosT.Dims[0] != B || cosT.Dims[1] != S || cosT.Dims[2] != half {
			return nil, c.Errorf("cos_cache has dims %v, want [%d %d %d]", cosT.Dims, B, S, half)
		}
		rowOf = func(b, s int64) int64 { return (b*S + s) * half }
	}
	if !equalDims(sinT.Dims, cosT.Dims) {
		return nil, c.Errorf("sin_cache dims %v differ from cos_cache dims %v", sinT.Dims, cosT.Dims)
	}
	xs, cs, sn := floats(x), floats(cosT), floats(sinT)
	for b := int64(0); b < B; b++ {
		for s := int64(0); s < S; s++ {
			r := rowOf(b, s)
			cr, sr := cs[r:r+half], sn[r:r+half]
			for h := int64(0); h < H; h++ {
				v := xs[b*sb+s*ss+h*sh:][:rd]
				for k := int64(0); k < half; k++ {
					i1, i2 := k, k+half
					if interleaved {
						i1, i2 = 2*k, 2*k+1
					}
					x1, x2 := v[i1], v[i2]
					v[i1] = x1*cr[k] - x2*sr[k]
					v[i2] = x2*cr[k] + x1*sr[k]
				}
			}
		}
	}
	return []*ir.Tensor{fromFloats(x.DType, x.Dims, xs)}, nil
}
