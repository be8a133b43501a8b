package main

import (
	"io"
	"os"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/datasrc"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/internal/progress"
	"github.com/kilnml/kiln/quant/calib"
)

// calibrationConfig sets cfg.Calibration and cfg.DynamicRanges from the flags.
// The builder calibrates (on its optimized graph, where the tensors it
// quantizes live) or reads the cache; the returned function ends the
// progress bar once the build has succeeded.
//
// A cache given alone is read with the algorithm its header names and the
// parameters its sidecar records, so that only a change of model makes it
// stale.
func (f *buildFlags) calibrationConfig(cfg *builder.Config, src *sourceModel, progressOut io.Writer) (done func(), err error) {
	done = func() {}
	if f.dynRange != "" {
		data, err := os.ReadFile(f.dynRange)
		if err != nil {
			return done, err
		}
		d, err := calib.ParseDynamicRanges(data, f.dynRange)
		if err != nil {
			return done, err
		}
		cfg.DynamicRanges = d.Amax
	}
	if f.calibCache == "" && f.calibData == "" {
		return done, nil
	}
	if f.calibBatches < 0 || f.calibBatchSize < 1 {
		return done, cli.Usagef("--calib-batches must be >= 0 and --calib-batch-size >= 1")
	}
	var algo calib.Algorithm // "": the builder picks (MinMax for transformers, Entropy2 otherwise)
	if f.calibrator != "" {
		var err error
		if algo, err = calib.ParseAlgorithm(f.calibrator); err != nil {
			return done, cli.Usagef("--calibrator: %v", err)
		}
	}
	cal := &builder.Calibration{
		Algorithm: algo, Cache: f.calibCache, Force: f.force, TRTVersion: calib.DefaultTRTVersion, ModelHash: src.SHA,
		Collect: calib.CollectOptions{MaxBatches: f.calibBatches},
	}
	if f.calibData == "" {
		if !fileExists(f.calibCache) {
			return done, cli.Usagef("--calib-cache %s does not exist: give --calib-data SRC to calibrate", f.calibCache)
		}
		if f.force {
			return done, cli.Usagef("--force recalibrates: it needs --calib-data SRC")
		}
		c, err := calib.ReadCacheFile(f.calibCache)
		if err != nil {
			return done, err
		}
		if cal.Algorithm, err = calib.ParseAlgorithm(c.Algorithm); err != nil {
			return done, err
		}
		side, err := calib.ReadSidecar(calib.SidecarPath(f.calibCache))
		if err != nil {
			return done, err
		}
		if side != nil && side.Algorithm == cal.Algorithm {
			cal.Params = side.Params
		}
	} else {
		ds, err := datasrc.Open(f.calibData, src.Model.Graph.RealInputs(), datasrc.Options{
			BatchSize: f.calibBatchSize, MaxBatches: f.calibBatches, MNISTDir: f.mnistDir,
		})
		if err != nil {
			return done, err
		}
		cal.Source = ds
		total := int64(f.calibBatches)
		if total == 0 {
			total = -1
		}
		bar := progress.New(total, "calibrate", progress.Options{Out: progressOut, Unit: "batches"})
		cal.Collect.Progress = func(k int) { bar.Set(int64(k)) }
		done = bar.Finish
	}
	cfg.Calibration = cal
	return done, nil
}
