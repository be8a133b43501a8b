// Package calib is kiln's post-training calibration: it streams calibration
// batches through the FP32 graph, gathers statistics of every activation
// tensor in one pass with memory bounded by tensors × bins, and turns them
// into ranges with one of TensorRT's calibration algorithms (EntropyCalibrator2,
// MinMax, Legacy) or percentile / MSE. Ranges are saved in TensorRT's
// calibration cache format, with a JSON sidecar for what that format cannot
// hold.
//
// # Histograms
//
// Each tensor keeps a histogram of |x| with bins of one fixed width starting
// at 0, as TensorRT's entropy calibrator does: the first batch in which the
// tensor has a non-zero value sets the width to max|x|/2048; later batches
// keep the width and append bins when a larger value arrives. To bound
// memory a histogram never exceeds MaxBins bins: past that, adjacent bins are
// merged pairwise (the width doubles), which is exact for counts but makes
// the result coarser. NaN and ±Inf are counted apart and never binned.
//
// # Order of batches and threads
//
// The collector runs batch 0 alone, then the remaining batches on several
// workers (batch k on worker k mod W), each starting from batch 0's
// histograms; merging adds counts. With a fixed width, appending bins does not
// move existing bin edges, so the result does not depend on the order of
// batches 1..N at all: only the choice of batch 0 matters, as in TensorRT. Two
// rarer cases depend on the worker count W: a tensor that is all zero in
// batch 0 (each worker then picks its own width and merging rebins onto the
// coarsest one by bin centres), and histograms that hit MaxBins (merging to a
// common power-of-two width, exact). Both are noted in Stats.Notes.
package calib
