package builder

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/kilnml/kiln/engine"
	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/version"
)

// Tactic timing (TensorRT's auto-tuning): when several tactics can run a
// layer and the build is not deterministic, each is lowered, its kernel
// decoded and run on random inputs at the profile's opt shape (one warm-up,
// then the fastest of a few runs: other load on the machine only ever adds
// time, so the minimum is the least disturbed estimate, where a median of
// five flips choices once two of the runs are hit), and the fastest tactic
// is kept. Choices go to
// the timing cache (Config.TimingCache), keyed by the layer's signature and
// the machine, so a rebuild with the cache does no timing and picks the
// same tactics.

const (
	timingRuns    = 5
	timingBudget  = 500 * time.Millisecond // per tactic: slow layers get fewer runs
	timingVersion = 2                      // 2: CPU runs timed by their minimum (1: median)
)

// timingCache is the JSON timing cache file.
type timingCache struct {
	Version int                    `json:"version"`
	Entries map[string]timingEntry `json:"entries"` // key: layer signature + machine
	path    string
	dirty   bool
}

type timingEntry struct {
	Tactic     string   `json:"tactic"`
	Layer      string   `json:"layer"`                // for people reading the file
	Candidates []string `json:"candidates,omitempty"` // the tactics timed
	Micros     []int    `json:"micros,omitempty"`     // their timed µs (-1: failed)
}

var timingCacheMu sync.Mutex // builds in one process share cache files

func loadTimingCache(path string) (*timingCache, error) {
	c := &timingCache{Version: timingVersion, Entries: map[string]timingEntry{}, path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("timing cache: %w", err)
	}
	var f timingCache
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("timing cache %s: not a kiln timing cache: %v", path, err)
	}
	if f.Version != timingVersion {
		return c, nil // another format: start over (the file is rewritten)
	}
	if f.Entries != nil {
		c.Entries = f.Entries
	}
	return c, nil
}

// save writes the cache atomically (temp file + rename).
func (c *timingCache) save() error {
	if !c.dirty {
		return nil
	}
	data, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".timing-*")
	if err != nil {
		return fmt.Errorf("timing cache: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("timing cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("timing cache: %w", err)
	}
	c.dirty = false
	return nil
}

var machineKey = sync.OnceValue(func() string {
	model := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var feats []string
	for name, on := range map[string]bool{
		"avx": cpu.X86.HasAVX, "avx2": cpu.X86.HasAVX2, "fma": cpu.X86.HasFMA, "f16c": cpu.X86.HasF16C,
		"avx512f": cpu.X86.HasAVX512F, "avx512bw": cpu.X86.HasAVX512BW, "avx512vnni": cpu.X86.HasAVX512VNNI,
		"avxvnni": cpu.X86.HasAVXVNNI, "asimd": cpu.ARM64.HasASIMD, "asimddp": cpu.ARM64.HasASIMDDP,
	} {
		if on {
			feats = append(feats, name)
		}
	}
	sort.Strings(feats)
	return fmt.Sprintf("%s|%s|%s|%s", model, runtime.GOARCH, strings.Join(feats, ","), version.Version)
})

// optDims maps the model's symbolic input dims to the first profile's opt
// values (unset ones are 1, as the builder's derived profile).
func (b *build) optDims() map[string]int64 {
	sym := map[string]int64{}
	var opt map[string][]int64
	if len(b.cfg.Profiles) > 0 {
		opt = map[string][]int64{}
		for name, r := range b.cfg.Profiles[0] {
			opt[name] = r.Opt
		}
	}
	for _, in := range b.m.Graph.RealInputs() {
		if in.Type == nil {
			continue
		}
		for i, d := range in.Type.Shape {
			if d.Param == "" {
				continue
			}
			v := int64(1)
			if o := opt[in.Name]; i < len(o) {
				v = o[i]
			}
			if _, seen := sym[d.Param]; !seen {
				sym[d.Param] = v
			}
		}
	}
	return sym
}

// concrete resolves a type's shape at the opt dims.
func concrete(t *ir.Type, sym map[string]int64) ([]int64, bool) {
	if t == nil || !t.HasShape {
		return nil, false
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		switch {
		case d.Known():
			dims[i] = d.Value
		case d.Param != "":
			v, ok := sym[d.Param]
			if !ok {
				return nil, false
			}
			dims[i] = v
		default:
			return nil, false
		}
	}
	return dims, true
}

// signature identifies a layer for the timing cache: op, attributes
// (without member names), input and output types at the opt shape,
// precision, the candidate tactics, and the threads they were timed at
// (how a layer splits over the worker pool, and so which tactic is
// fastest, depends on it: an engine built for 2 threads must not reuse a
// choice timed at 1).
func signature(l *engine.Layer, sym map[string]int64, names []string, threads int) (string, bool) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s.%s|%s|", l.Node.Domain, l.Node.OpType, l.Precision)
	attrs := slices.Clone(l.Node.Attrs)
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name < attrs[j].Name })
	for _, a := range attrs {
		if a.Name == "kiln_members" || a.Name == "kiln_member_ops" {
			continue
		}
		fmt.Fprintf(&sb, "%s=%v/%v/%q/%v/%v;", a.Name, a.I, a.F, a.S, a.Ints, a.Floats)
	}
	for i, t := range append(slices.Clone(l.In), l.Out...) {
		if t == nil {
			sb.WriteString("-;")
			continue
		}
		d, ok := concrete(t, sym)
		if !ok {
			return "", false
		}
		konst := i < len(l.Const) && l.Const[i] != nil
		fmt.Fprintf(&sb, "%s%v%v;", t.DType, d, konst)
	}
	fmt.Fprintf(&sb, "|%s|%s|threads=%d", strings.Join(names, ","), machineKey(), threads)
	sum := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(sum[:16]), true
}

// timeTactics picks among several tactics: from the timing cache, else by
// timing each at the opt shape. It returns ok=false when the layer cannot
// be timed (shapes unknown at opt); the caller then takes the first that
// lowers.
func (b *build) timeTactics(l *engine.Layer, cands []engine.Tactic, names []string) (string, *engine.Lowered, bool, error) {
	// Fallback backends (negative priority, like ref) only compete when no
	// regular backend offers a tactic: timing the reference kernels of a
	// large network would cost more than the whole build. A device backend
	// (engine.ExclusiveBackend) that offers tactics competes alone.
	var prio []int
	var excl []bool
	for _, bk := range engine.Backends() {
		ex := engine.Exclusive(bk)
		for range bk.Tactics(l) {
			prio, excl = append(prio, bk.Priority()), append(excl, ex)
		}
	}
	if len(prio) == len(cands) {
		keepIf := func(keep func(i int) bool) {
			var ts []engine.Tactic
			var ns []string
			for i := range cands {
				if keep(i) {
					ts, ns = append(ts, cands[i]), append(ns, names[i])
				}
			}
			cands, names = ts, ns
		}
		switch {
		case slices.Contains(excl, true):
			keepIf(func(i int) bool { return excl[i] })
		case slices.ContainsFunc(prio, func(p int) bool { return p >= 0 }):
			keepIf(func(i int) bool { return prio[i] >= 0 })
		}
	}
	if len(cands) < 2 {
		return "", nil, false, nil
	}
	sym := b.optDims()
	key, ok := signature(l, sym, names, b.timingThreads())
	if !ok {
		return "", nil, false, nil
	}
	if b.timing == nil {
		// Loaded once per build; without a file it still remembers
		// choices so that layers with equal signatures are timed once.
		b.timing = &timingCache{Version: timingVersion, Entries: map[string]timingEntry{}}
		if b.cfg.TimingCache != "" {
			timingCacheMu.Lock()
			c, err := loadTimingCache(b.cfg.TimingCache)
			timingCacheMu.Unlock()
			if err != nil {
				return "", nil, false, err
			}
			b.timing = c
		}
	}
	cache := b.timing
	if e, hit := cache.Entries[key]; hit {
		if i := slices.Index(names, e.Tactic); i >= 0 {
			if low, err := cands[i].Lower(l); err == nil {
				b.cfg.logf("%s: tactic %s (timing cache)", layerName(l.Node), names[i])
				return names[i], low, true, nil
			}
		}
	}
	best, bestT := -1, time.Duration(0)
	var bestLow *engine.Lowered
	micros := make([]int, len(cands))
	var errs []error
	inputs := timingInputs{} // this layer's random inputs, shared by its tactics
	for i, t := range cands {
		low, err := t.Lower(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("tactic %s: %w", names[i], err))
			micros[i] = -1
			continue
		}
		d, err := b.timeLowered(l, low, sym, inputs)
		if errors.Is(err, errWorkspace) {
			b.cfg.logf("%s: tactic %s skipped: %v", layerName(l.Node), names[i], err)
			micros[i] = -1
			continue
		}
		if err != nil {
			b.cfg.logf("%s: tactic %s cannot be timed: %v", layerName(l.Node), names[i], err)
			micros[i] = -1
			if best < 0 && bestLow == nil {
				bestLow, best = low, i // keep a valid fallback
				bestT = 1<<62 - 1
			}
			continue
		}
		micros[i] = int(d.Microseconds())
		b.cfg.logf("%s: tactic %s %v", layerName(l.Node), names[i], d)
		if bestLow == nil || d < bestT {
			best, bestT, bestLow = i, d, low
		}
	}
	if bestLow == nil { // none of the timed tactics lowers: the caller tries them all in order
		b.cfg.logf("%s: no timed tactic lowers: %v", layerName(l.Node), errors.Join(errs...))
		return "", nil, false, nil
	}
	cache.Entries[key] = timingEntry{Tactic: names[best], Layer: layerName(l.Node), Candidates: names, Micros: micros}
	if cache.path != "" {
		cache.dirty = true
		timingCacheMu.Lock()
		err := cache.save()
		timingCacheMu.Unlock()
		if err != nil {
			return "", nil, true, err
		}
	}
	return names[best], bestLow, true, nil
}

// selfTimer is a kernel that times itself better than the wall clock can:
// the CUDA backend's steps stage their inputs on the device once and
// return the median GPU compute time of runs (CUDA events), which host
// copies of large activations would otherwise swamp.
type selfTimer interface {
	TimeRun(x *engine.Exec, in, out []*ir.Tensor, runs int) (time.Duration, error)
}

// timingThreads is the thread count tactics are timed at.
func (b *build) timingThreads() int {
	if b.cfg.Threads > 0 {
		return b.cfg.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// timeLowered decodes a lowered step and returns the least of its run
// times on random inputs at the opt shape (self-timing device kernels
// report their own statistic).
// errWorkspace marks a tactic that needs more scratch than Config.WorkspaceLimit.
var errWorkspace = errors.New("over the workspace limit")

func (b *build) timeLowered(l *engine.Layer, low *engine.Lowered, sym map[string]int64, inputs timingInputs) (time.Duration, error) {
	peak := 0 // largest scratch request seen while timing
	dec, err := engine.LookupKernel(low.Kernel)
	if err != nil {
		return 0, err
	}
	k, err := dec(low.Params, low.Weights)
	if err != nil {
		return 0, err
	}
	use := low.Inputs
	if use == nil {
		for i := range l.Node.Inputs {
			use = append(use, i)
		}
	}
	in := make([]*ir.Tensor, len(use))
	for j, i := range use {
		if l.Node.Inputs[i] == "" {
			continue
		}
		if i < len(l.Const) && l.Const[i] != nil {
			in[j] = l.Const[i]
			continue
		}
		dims, ok := concrete(l.In[i], sym)
		if !ok {
			return 0, fmt.Errorf("input %d has no shape at the opt dims", i)
		}
		in[j] = inputs.get(i, l.In[i].DType, dims)
	}
	shapes, err := k.Shapes(in)
	if err != nil {
		return 0, err
	}
	out := make([]*ir.Tensor, len(shapes))
	for i, d := range shapes {
		if d == nil || i >= len(l.Out) || l.Out[i] == nil {
			continue
		}
		out[i] = ir.NewTensor(l.Out[i].DType, d)
	}
	threads := b.timingThreads()
	var scratch []byte
	x := &engine.Exec{Threads: threads, Scratch: func(n int) []byte {
		peak = max(peak, n)
		if cap(scratch) < n {
			scratch = ir.AlignedBytes(int64(n))
		}
		return scratch[:n]
	}}
	start := time.Now()
	if err := k.Run(x, in, out); err != nil { // warm-up
		return 0, err
	}
	warm := time.Since(start)
	if lim := b.cfg.WorkspaceLimit; lim > 0 && int64(peak) > lim {
		return 0, fmt.Errorf("%w: needs %d bytes of workspace at the opt shape, the limit is %d", errWorkspace, peak, lim)
	}
	if st, ok := k.(selfTimer); ok { // device kernels time their own compute
		return st.TimeRun(x, in, out, timingRuns)
	}
	if warm >= timingBudget/2 { // slow enough that the warm-up is the measurement
		return warm, nil
	}
	runs := min(timingRuns, max(1, int(timingBudget/max(warm, 1))-1))
	times := make([]time.Duration, runs)
	for i := range times {
		t0 := time.Now()
		if err := k.Run(x, in, out); err != nil {
			return 0, err
		}
		times[i] = time.Since(t0)
	}
	return slices.Min(times), nil
}

// randomTensor fills a tensor with values a kernel can run on: standard
// normal floats, random codes for 8-bit types, small integers otherwise.
// timingInputs are a layer's random timing inputs by node input index,
// made on first use and shared by all the layer's tactics (each used to
// make its own from the same seed: the same values, and at large opt
// shapes, as a GPU build's batch 256, making them took longer than timing
// the kernels).
type timingInputs map[int]*ir.Tensor

func (c timingInputs) get(i int, dt ir.DType, dims []int64) *ir.Tensor {
	if t := c[i]; t != nil && t.DType == dt && slices.Equal(t.Dims, dims) {
		return t
	}
	t := randomTensor(rand.New(rand.NewPCG(1, 2+uint64(i))), dt, dims)
	c[i] = t
	return t
}

func randomTensor(r *rand.Rand, dt ir.DType, dims []int64) *ir.Tensor {
	t := ir.NewTensor(dt, dims)
	n := t.Len()
	switch {
	case dt == ir.Float32:
		for i, v := 0, t.F32(); i < len(v); i++ {
			v[i] = float32(r.NormFloat64())
		}
	case dt == ir.Int8 || dt == ir.Uint8 || dt == ir.Float8E4M3FN:
		var w uint64
		for i := range t.Data { // eight random bytes per draw
			if i%8 == 0 {
				w = r.Uint64()
			}
			c := byte(w >> (8 * (i % 8)))
			if dt == ir.Float8E4M3FN && c&0x7f == 0x7f { // no NaN codes
				c ^= 1
			}
			t.Data[i] = c
		}
	case dt.IsFloat():
		for i := int64(0); i < n; i++ {
			t.SetFloat64At(i, r.NormFloat64())
		}
	default:
		for i := int64(0); i < n; i++ {
			t.SetInt64At(i, int64(r.IntN(3)))
		}
	}
	return t
}
