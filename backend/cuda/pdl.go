package cudabackend

import (
	"os"
	"sync/atomic"
)

// Programmatic dependent launches (gpu/cuda/pdl.go): on a device that
// supports them (Hopper and later), each context's stream launches kiln's
// kernels so that a kernel's grid is scheduled while the kernel before it
// runs and waits on the GPU (griddepcontrol.wait, the first statement of
// every kiln kernel) instead of being launched after it ends. The graph
// capture pass does not use them (its stream is the plain one).

var pdlOn atomic.Bool

func init() { pdlOn.Store(os.Getenv("KILN_CUDA_PDL") != "0") }

// SetPDL turns programmatic dependent launches on (the default where the
// device supports them; KILN_CUDA_PDL=0 turns them off) or off for later
// steps.
func SetPDL(on bool) { pdlOn.Store(on) }

// PDL reports whether programmatic dependent launches are on.
func PDL() bool { return pdlOn.Load() }
