package kernels

import (
	"regexp"
	"strings"
	"testing"
)

// TestKernelsStartWithPDLEnter checks that every kernel of every module
// starts with pdl_enter(): the CUDA backend launches kiln's kernels as
// programmatic dependents (gpu/cuda/pdl.go), and a kernel that read its
// input before griddepcontrol.wait could see the previous kernel's output
// half written.
func TestKernelsStartWithPDLEnter(t *testing.T) {
	name := regexp.MustCompile(`\b(\w+)\s*\(`)
	for _, m := range []struct{ name, src string }{{Name, Source}, {IGemmName, IGemm}, {WGemmName, WGemm}} {
		n := 0
		for rest := m.src; ; {
			i := strings.Index(rest, "__global__")
			if i < 0 {
				break
			}
			rest = rest[i+len("__global__"):]
			open := strings.Index(rest, "{")
			if open < 0 {
				t.Fatalf("%s: a __global__ without a body", m.name)
			}
			sig := rest[:open]
			fn := "?"
			if mm := name.FindAllStringSubmatch(sig, -1); len(mm) > 0 {
				fn = mm[len(mm)-1][1] // __launch_bounds__(…) comes first
				for _, x := range mm {
					if x[1] != "__launch_bounds__" {
						fn = x[1]
						break
					}
				}
			}
			body := strings.TrimLeft(rest[open+1:], " \t")
			if !strings.HasPrefix(body, "pdl_enter();") {
				t.Errorf("%s: kernel %s does not start with pdl_enter()", m.name, fn)
			}
			n++
			rest = rest[open+1:]
		}
		if n == 0 {
			t.Errorf("%s: no kernels found", m.name)
		}
		t.Logf("%s: %d kernel definitions", m.name, n)
	}
}
