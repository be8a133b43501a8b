package calib

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sort"
	"sync"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/ops"
)

// Stats holds the statistics of every calibrated tensor.
type Stats struct {
	Tensors  map[string]*TensorStats
	Order    []string // tensors in the order the graph computes them
	Batches  int
	DataHash string   // sha256 of every calibration input, in stream order
	Notes    []string // where the result depends on worker count (see package doc)
}

// CollectOptions tunes Collect.
type CollectOptions struct {
	Workers    int             // concurrent graph runs; 0 = GOMAXPROCS
	MaxBatches int             // stop after this many batches; 0 = until io.EOF
	Progress   func(batch int) // called after each batch is merged or dispatched
}

// Collect streams every batch of src through the session's graph and
// gathers statistics of every floating-point activation (graph inputs and
// node outputs that do not derive only from constants), in one pass. Memory
// is bounded by tensors × bins plus the batches in flight, never by the
// amount of data.
func Collect(sess *ops.Session, src Stream, opt CollectOptions) (*Stats, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	consts := constantValues(sess.Model().Graph)
	h := sha256.New()
	next := func(k int) (map[string]*ir.Tensor, error) {
		if opt.MaxBatches > 0 && k >= opt.MaxBatches {
			return nil, io.EOF
		}
		b, err := src.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("calibration batch %d: %w", k, err)
		}
		if err := checkBatch(sess, b, k); err != nil {
			return nil, err
		}
		hashBatch(h, sess, b)
		return b, nil
	}

	// Batch 0 alone fixes every histogram's bin width.
	first, err := next(0)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the calibration source produced no batches")
	}
	if err != nil {
		return nil, err
	}
	base := &Stats{Tensors: map[string]*TensorStats{}}
	if err := runBatch(sess, first, consts, base); err != nil {
		return nil, fmt.Errorf("calibration batch 0: %w", err)
	}
	base.Batches = 1
	if opt.Progress != nil {
		opt.Progress(1)
	}

	// Batches 1..N: batch k goes to worker k mod W.
	locals := make([]*Stats, workers)
	chans := make([]chan map[string]*ir.Tensor, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range locals {
		locals[w] = base.emptyLike()
		chans[w] = make(chan map[string]*ir.Tensor, 1)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := range chans[w] {
				if errs[w] != nil {
					continue // drain
				}
				if err := runBatch(sess, b, consts, locals[w]); err != nil {
					errs[w] = err
				}
			}
		}(w)
	}
	k := 1
	var readErr error
	for {
		b, err := next(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		chans[k%workers] <- b
		k++
		if opt.Progress != nil {
			opt.Progress(k)
		}
	}
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	approx := map[string]bool{}
	for _, l := range locals {
		for _, name := range l.Order {
			ts := l.Tensors[name]
			if b, ok := base.Tensors[name]; ok {
				if !b.Merge(ts) {
					approx[name] = true
				}
			} else {
				base.Tensors[name] = ts
				base.Order = append(base.Order, name)
			}
		}
	}
	base.Batches = k
	base.DataHash = hex.EncodeToString(h.Sum(nil))
	names := make([]string, 0, len(approx))
	for n := range approx {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base.Notes = append(base.Notes, fmt.Sprintf("tensor %q: histograms of different widths were merged by bin centres (approximate; depends on the worker count)", n))
	}
	return base, nil
}

func (s *Stats) emptyLike() *Stats {
	e := &Stats{Tensors: map[string]*TensorStats{}, Order: append([]string(nil), s.Order...)}
	for n, t := range s.Tensors {
		e.Tensors[n] = t.emptyLike()
	}
	return e
}

func runBatch(sess *ops.Session, b map[string]*ir.Tensor, consts map[string]bool, into *Stats) error {
	_, err := sess.RunObserved(b, func(name string, t *ir.Tensor) {
		if consts[name] || !t.DType.IsFloat() {
			return
		}
		ts := into.Tensors[name]
		if ts == nil {
			ts = newTensorStats(name, t.DType)
			into.Tensors[name] = ts
			into.Order = append(into.Order, name)
		}
		ts.Observe(t)
	})
	return err
}

// constantValues returns the values that depend only on initializers and
// Constant nodes: weights and shape arithmetic, not activations.
func constantValues(g *ir.Graph) map[string]bool {
	c := map[string]bool{}
	for _, t := range g.Initializers {
		c[t.Name] = true
	}
	order, err := g.TopoSort()
	if err != nil {
		return c
	}
	for _, n := range order {
		all := true
		for _, in := range n.Inputs {
			if in != "" && !c[in] {
				all = false
			}
		}
		if all {
			for _, o := range n.Outputs {
				c[o] = true
			}
		}
	}
	return c
}

// checkBatch validates a batch against the model's inputs before running it.
func checkBatch(sess *ops.Session, b map[string]*ir.Tensor, k int) error {
	var errs []error
	for _, in := range sess.Inputs() {
		t, ok := b[in.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("calibration batch %d: no data for input %q", k, in.Name))
			continue
		}
		if err := ops.CheckInput(in, t); err != nil {
			errs = append(errs, fmt.Errorf("calibration batch %d: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

func hashBatch(h hash.Hash, sess *ops.Session, b map[string]*ir.Tensor) {
	for _, in := range sess.Inputs() {
		t := b[in.Name]
		fmt.Fprintf(h, "%s|%s|%v|", in.Name, t.DType, t.Dims)
		h.Write(t.Data)
	}
}
