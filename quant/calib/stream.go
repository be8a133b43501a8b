package calib

import (
	"io"

	"github.com/kilnml/kiln/ir"
)

// Stream is the Go form of TensorRT's IInt8Calibrator batch interface: each
// call to Next returns one batch, keyed by graph input name, and io.EOF
// when the data is exhausted.
type Stream interface {
	BatchSize() int
	Next() (map[string]*ir.Tensor, error)
}

// Calibrator is a Stream that also chooses the algorithm and stores the
// cache, as IInt8Calibrator does; kiln's builder drives it. ReadCache
// returns (nil, nil) when there is no cache yet.
type Calibrator interface {
	Stream
	Algorithm() Algorithm
	ReadCache() ([]byte, error)
	WriteCache([]byte) error
}

// Rewinder is a Stream that can start over from its first batch. Passes
// that read the calibration data twice (SmoothQuant's per-channel
// statistics, then calibration of the smoothed graph) need one.
type Rewinder interface {
	Stream
	Rewind() error
}

// SliceStream serves batches held in memory (tests, small data sets).
type SliceStream struct {
	Batches []map[string]*ir.Tensor
	pos     int
}

func (s *SliceStream) BatchSize() int {
	if len(s.Batches) == 0 {
		return 0
	}
	for _, t := range s.Batches[0] {
		if len(t.Dims) > 0 {
			return int(t.Dims[0])
		}
	}
	return 1
}

func (s *SliceStream) Next() (map[string]*ir.Tensor, error) {
	if s.pos >= len(s.Batches) {
		return nil, io.EOF
	}
	s.pos++
	return s.Batches[s.pos-1], nil
}

// Rewind serves the batches again from the first.
func (s *SliceStream) Rewind() error {
	s.pos = 0
	return nil
}

// FuncStream adapts a function; it returns io.EOF when done.
type FuncStream struct {
	Size int
	Fn   func() (map[string]*ir.Tensor, error)
}

func (f FuncStream) BatchSize() int                       { return f.Size }
func (f FuncStream) Next() (map[string]*ir.Tensor, error) { return f.Fn() }
