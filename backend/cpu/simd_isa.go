package cpu

import (
	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/kernels/avx"
)

// The SIMD tactics' names and kernel ids say which instruction-set variant
// of kernels/avx ran when the plan was built (and its tactics timed):
// "avx512" (INT8 GEMMs: "vnni") where the AVX-512 micro-kernels run,
// "avx2" on the AVX2 path (an AVX2 CPU, or KILN_CPU_ISA=avx2), "generic"
// where only the Go twins run (tests forcing avx.Variant; on the AVX2 path
// the kernels without an AVX2 form: the FP32 depthwise conv and max pool). The AVX-512
// names are the ones plans and timing caches held before the AVX2 path got
// its own (a plan built on the AVX2 path then said cpu.conv.dw.avx512.i8
// while AVX2 code ran), so every id of every variant stays registered:
// any plan loads on any CPU and runs the best variant that CPU allows (the
// variants share packed layouts), with a PortabilityWarning when that is
// below the variant the plan names. Timing caches key their entries by
// the candidate tactics' names, so AVX2 builds no longer reuse choices
// timed for AVX-512 (or, with an old cache, time those layers again).

// isaFamily is which selector of kernels/avx a kernel's variant follows.
type isaFamily int

const (
	famF32 isaFamily = iota // avx.Variant: FP32 micro-kernels and their routines
	famI8                   // avx.QVariant: the INT8 micro-kernels
)

// isaTier is a variant, best first.
type isaTier int

const (
	tierTop     isaTier = iota // AVX-512 (INT8: AVX-512 VNNI)
	tierAVX2                   // AVX2 (+FMA for FP32)
	tierGeneric                // the Go twins
)

// tier is the family's variant in effect now.
func (f isaFamily) tier() isaTier {
	if f == famI8 {
		switch avx.QVariant {
		case avx.QVariantVNNI:
			return tierTop
		case avx.QVariantAVX2:
			return tierAVX2
		}
		return tierGeneric
	}
	switch avx.Variant {
	case avx.VariantAVX512:
		return tierTop
	case avx.VariantAVX2:
		return tierAVX2
	}
	return tierGeneric
}

// isaIDs is one SIMD kernel's ids, by variant.
type isaIDs struct {
	fam isaFamily
	ids [3]string // [tierTop] the AVX-512 id, [tierAVX2] ("" with goOnAVX2), [tierGeneric]
	// goOnAVX2: no AVX2 form, the AVX2 path runs the Go twins
	goOnAVX2 bool
}

// tier is the variant of this kernel that runs now.
func (k isaIDs) tier() isaTier {
	t := k.fam.tier()
	if t == tierAVX2 && k.goOnAVX2 {
		return tierGeneric
	}
	return t
}

// now is the id a build writes.
func (k isaIDs) now() string { return k.ids[k.tier()] }

// tag is the variant's word in the kernel's tactic name: top for the
// AVX-512 variant (the name the tactic always had), else "avx2" or
// "generic".
func (k isaIDs) tag(top string) string { return [...]string{top, "avx2", "generic"}[k.tier()] }

// String is the id for messages: the AVX-512 one.
func (k isaIDs) String() string { return k.ids[tierTop] }

// registerISA registers build under every variant's id; kernels that embed
// builtFor learn which one the plan named.
func registerISA[P any](k isaIDs, build func(p *P, w []*ir.Tensor) (engine.Kernel, error)) {
	for tier, id := range k.ids {
		if id == "" {
			continue
		}
		register(id, func(p *P, w []*ir.Tensor) (engine.Kernel, error) {
			kern, err := build(p, w)
			if b, ok := kern.(builtSetter); ok && err == nil {
				b.setBuilt(k, isaTier(tier), id)
			}
			return kern, err
		})
	}
}

type builtSetter interface {
	setBuilt(k isaIDs, t isaTier, id string)
}

// builtFor is embedded in SIMD kernels: the variant their plan step names.
type builtFor struct {
	k    isaIDs
	tier isaTier
	id   string
}

func (b *builtFor) setBuilt(k isaIDs, t isaTier, id string) { *b = builtFor{k, t, id} }

// PortabilityWarning says when this CPU (or KILN_CPU_ISA) runs a lesser
// variant than the one the plan was built and timed with.
func (b *builtFor) PortabilityWarning() string {
	now := b.k.tier()
	if b.id == "" || now <= b.tier {
		return ""
	}
	built := [...]string{"AVX-512", "AVX2"}[b.tier]
	if b.k.fam == famI8 {
		if b.tier == tierTop {
			built = "AVX-512 VNNI"
		}
		if now == tierAVX2 {
			return b.id + ": built for " + built + ", this CPU (or KILN_CPU_ISA) lacks it: running its AVX2 form (slower, same results)"
		}
		return b.id + ": built for " + built + ", this CPU (or KILN_CPU_ISA) runs its portable Go twin (much slower, same results)"
	}
	if now == tierAVX2 {
		return b.id + ": built for AVX-512, this CPU (or KILN_CPU_ISA) lacks it: AVX2 micro-kernels, Go twins for the AVX-512-only routines (FP32 rounding may differ from an AVX-512 machine; INT8 is exact)"
	}
	return b.id + ": built for " + built + ", this CPU (or KILN_CPU_ISA) runs its portable Go twins (much slower; FP32 rounding may differ, INT8 is exact)"
}
