package engine

// DeviceKernel is implemented by kernels that run on an accelerator and can
// hand tensors to each other in its memory. Engine tensors live in host
// memory (the context arena); a device kernel that knows its producer ran on
// the same device can skip the host-to-device copy of an input, and one that
// knows no host code reads an output can skip the copy back.
type DeviceKernel interface {
	Kernel
	// Device names the memory the kernel computes in (e.g. "cuda"); kernels
	// with equal names share tensors.
	Device() string
	// Link is called once by NewEngine, before any context exists:
	// inOnDevice[i] says input i is the output of a step on the same device
	// (so that step's device copy is current), outToHost[k] says output k is
	// read by the host: an engine output, a shape step or a step of another
	// kind. The kernel is used by every context of the engine afterwards.
	Link(inOnDevice, outToHost []bool)
}

// linkDevices tells each DeviceKernel where its inputs come from and where
// its outputs go.
func linkDevices(p *Plan, kernels []Kernel) {
	device := func(si int) string {
		if p.Steps[si].ShapeStep {
			return ""
		}
		if dk, ok := kernels[si].(DeviceKernel); ok {
			return dk.Device()
		}
		return ""
	}
	producer := make([]int, len(p.Values))
	for i := range producer {
		producer[i] = -1
	}
	toHost := make([]bool, len(p.Values)) // read by host code
	readOn := make([]map[string]bool, len(p.Values))
	for si, s := range p.Steps {
		for _, v := range s.Outputs {
			if v >= 0 && v < len(p.Values) {
				producer[v] = si
			}
		}
		d := device(si)
		for _, v := range s.Inputs {
			if v < 0 || v >= len(p.Values) {
				continue
			}
			if d == "" {
				toHost[v] = true
				continue
			}
			if readOn[v] == nil {
				readOn[v] = map[string]bool{}
			}
			readOn[v][d] = true
		}
	}
	for v := range p.Values {
		if p.Values[v].Output {
			toHost[v] = true
		}
	}
	for si, s := range p.Steps {
		dk, ok := kernels[si].(DeviceKernel)
		d := device(si)
		if !ok || d == "" {
			continue
		}
		in := make([]bool, len(s.Inputs))
		for i, v := range s.Inputs {
			in[i] = v >= 0 && v < len(p.Values) && producer[v] >= 0 && device(producer[v]) == d
		}
		out := make([]bool, len(s.Outputs))
		for k, v := range s.Outputs {
			if v < 0 || v >= len(p.Values) {
				continue
			}
			out[k] = toHost[v]
			for other := range readOn[v] {
				if other != d {
					out[k] = true // another device reads it through host memory
				}
			}
		}
		dk.Link(in, out)
	}
}
