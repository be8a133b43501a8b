package nn

// Window geometry shared by Conv and the pooling ops: strides, dilations,
// pads (explicit or from auto_pad) and the spatial output size.

// geom is the resolved sliding-window geometry of one node. Per spatial
// axis: input size (-1 when unknown at inference time), kernel, stride,
// dilation, begin/end pads and output size (-1 when unknown).
type geom struct {
	in, kernel, stride, dil, padB, padE, out []int64
}

// rank is the number of spatial axes.
func (g *geom) rank() int { return len(g.kernel) }

// newGeom reads strides, dilations, pads and auto_pad for a window of
// kernel over spatial input sizes in. ceilMode applies the pooling rule
// (output rounded up, but a window starting in the right padding is
// dropped). useDil is false for ops without a dilations attribute.
func newGeom(a attrGetter, in, kernel []int64, ceilMode, useDil bool) (*geom, error) {
	r := len(kernel)
	ones := make([]int64, r)
	for i := range ones {
		ones[i] = 1
	}
	g := &geom{in: in, kernel: kernel, stride: a.Ints("strides", ones), dil: ones,
		padB: make([]int64, r), padE: make([]int64, r), out: make([]int64, r)}
	if useDil {
		g.dil = a.Ints("dilations", ones)
	}
	pads := a.Ints("pads", make([]int64, 2*r))
	if err := a.Err(); err != nil {
		return nil, err
	}
	if len(g.stride) == 0 {
		g.stride = ones
	}
	if len(g.dil) == 0 {
		g.dil = ones
	}
	if len(pads) == 0 {
		pads = make([]int64, 2*r)
	}
	if len(g.stride) != r {
		return nil, a.Errorf("strides %v: want %d values, one per spatial axis", g.stride, r)
	}
	if len(g.dil) != r {
		return nil, a.Errorf("dilations %v: want %d values, one per spatial axis", g.dil, r)
	}
	if len(pads) != 2*r {
		return nil, a.Errorf("pads %v: want %d values", pads, 2*r)
	}
	autoPad := a.String("auto_pad", "NOTSET")
	switch autoPad {
	case "NOTSET", "", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return nil, a.Errorf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", autoPad)
	}
	for i := 0; i < r; i++ {
		k, s, d := kernel[i], g.stride[i], g.dil[i]
		if k <= 0 || s <= 0 || d <= 0 {
			return nil, a.Errorf("spatial axis %d: kernel %d, stride %d, dilation %d must all be positive", i, k, s, d)
		}
		eff := (k-1)*d + 1
		n := in[i]
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			if n < 0 {
				g.out[i] = -1
				continue
			}
			o := ceilDiv(n, s)
			need := max(0, (o-1)*s+eff-n)
			if autoPad == "SAME_UPPER" {
				g.padB[i] = need / 2
			} else {
				g.padB[i] = need - need/2
			}
			g.padE[i] = need - g.padB[i]
			g.out[i] = o
		case "VALID":
			if n < 0 {
				g.out[i] = -1
				continue
			}
			if n < eff {
				return nil, a.Errorf("spatial axis %d: input size %d is smaller than the dilated kernel %d", i, n, eff)
			}
			g.out[i] = (n-eff)/s + 1
		default:
			g.padB[i], g.padE[i] = pads[i], pads[i+r]
			if g.padB[i] < 0 || g.padE[i] < 0 {
				return nil, a.Errorf("pads %v: negative pads are not supported", pads)
			}
			if n < 0 {
				g.out[i] = -1
				continue
			}
			span := n + g.padB[i] + g.padE[i] - eff
			if span < 0 {
				return nil, a.Errorf("spatial axis %d: padded input size %d is smaller than the dilated kernel %d",
					i, n+g.padB[i]+g.padE[i], eff)
			}
			if ceilMode {
				o := ceilDiv(span, s) + 1
				if (o-1)*s >= n+g.padB[i] { // the last window would start in the right padding
					o--
				}
				g.out[i] = o
			} else {
				g.out[i] = span/s + 1
			}
		}
	}
	return g, nil
}
