package mnist

import "math/rand/v2"

// The normalization every MNIST model of the lesson uses: the training set's
// mean and standard deviation of x/255.
const (
	Mean = 0.1307
	Std  = 0.3081
)

// Normalize maps a raw pixel 0..255 to (x/255 − Mean)/Std.
func Normalize(p byte) float32 { return (float32(p)/255 - Mean) / Std }

// Batches iterates over a Set in batches, in a seeded random order (or in
// file order when not shuffled). Each epoch reshuffles deterministically from
// the seed and the epoch number.
type Batches struct {
	set     *Set
	size    int
	order   []int
	pos     int
	shuffle bool
	seed    uint64
	epoch   uint64
}

// NewBatches returns an iterator over set in batches of size; the last batch
// of an epoch may be smaller.
func NewBatches(set *Set, size int, shuffle bool, seed uint64) *Batches {
	b := &Batches{set: set, size: max(size, 1), shuffle: shuffle, seed: seed}
	b.order = make([]int, set.Len())
	b.Reset(0)
	return b
}

// Reset starts epoch e: the order is a permutation drawn from (seed, e).
func (b *Batches) Reset(epoch int) {
	b.epoch, b.pos = uint64(epoch), 0
	for i := range b.order {
		b.order[i] = i
	}
	if b.shuffle {
		r := rand.New(rand.NewPCG(b.seed, b.epoch))
		r.Shuffle(len(b.order), func(i, j int) { b.order[i], b.order[j] = b.order[j], b.order[i] })
	}
}

// Order is the current epoch's order of example indices (a copy): batch k
// holds Order()[k·size : (k+1)·size]. Tools that replay training elsewhere
// (tools/trainref) read it.
func (b *Batches) Order() []int { return append([]int(nil), b.order...) }

// NumBatches is the number of batches in one epoch.
func (b *Batches) NumBatches() int { return (len(b.order) + b.size - 1) / b.size }

// Next fills x (len ≥ n·rows·cols, NCHW with one channel) with normalized
// pixels and labels with the digits of the next n examples, and returns n;
// 0 means the epoch is over.
func (b *Batches) Next(x []float32, labels []int) int {
	n := min(b.size, len(b.order)-b.pos)
	if n <= 0 {
		return 0
	}
	sz := b.set.Images.Rows * b.set.Images.Cols
	for k := 0; k < n; k++ {
		i := b.order[b.pos+k]
		FillNormalized(x[k*sz:(k+1)*sz], b.set.Images.Image(i))
		labels[k] = int(b.set.Labels[i])
	}
	b.pos += n
	return n
}

// FillNormalized writes the normalized pixels of one image into dst.
func FillNormalized(dst []float32, pixels []byte) {
	dst = dst[:len(pixels)]
	for j, p := range pixels {
		dst[j] = lut[p]
	}
}

var lut = func() (t [256]float32) {
	for i := range t {
		t[i] = Normalize(byte(i))
	}
	return
}()
