package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/kilnml/kiln/builder"
	"github.com/kilnml/kiln/internal/cli"
	"github.com/kilnml/kiln/quant/calib"
)

// calibrateForBuild gets the ranges of --calib-cache / --calib-data (nil
// when neither is given). A cache alone is read with the algorithm its
// header names and the parameters its sidecar records, so that only a
// change of model makes it stale.
func (f *buildFlags) calibrateForBuild(src *sourceModel, progressOut io.Writer) (*calibration, error) {
	if f.calibCache == "" && f.calibData == "" {
		return nil, nil
	}
	opt := calibOptions{
		data: f.calibData, calibrator: f.calibrator, cache: f.calibCache, trtVersion: "10.9.0",
		mnistDir: f.mnistDir, batches: f.calibBatches, batchSize: f.calibBatchSize, percentile: 99.99,
	}
	if f.calibData == "" {
		if !fileExists(f.calibCache) {
			return nil, cli.Usagef("--calib-cache %s does not exist: give --calib-data SRC to calibrate", f.calibCache)
		}
		c, err := calib.ReadCacheFile(f.calibCache)
		if err != nil {
			return nil, err
		}
		algo, err := calib.ParseAlgorithm(c.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.calibCache, err)
		}
		opt.calibrator = string(algo)
		side, err := calib.ReadSidecar(calib.SidecarPath(f.calibCache))
		if err != nil {
			return nil, err
		}
		if side != nil && side.Params.Percentile != 0 {
			opt.percentile = side.Params.Percentile
		}
	}
	return runCalibration(src, opt, progressOut)
}

// applyCalibration hands the ranges to the builder configuration and
// returns what the report should say about them.
//
// The builder does not take calibration ranges yet (builder.Config has no
// field for them); until it does, the ranges are computed and checked (a
// stale cache still stops the build) but the INT8/FP8 layers get their
// scales from Q/DQ nodes only, and the build says so.
func applyCalibration(cfg *builder.Config, c *calibration, cachePath string) (notes []string) {
	if c == nil {
		return nil
	}
	_ = cfg
	notes = append(notes, c.Warnings...)
	sha := ""
	if data, err := os.ReadFile(cachePath); err == nil {
		sum := sha256.Sum256(data)
		sha = hex.EncodeToString(sum[:])
	}
	notes = append(notes, fmt.Sprintf("calibration ranges for %d tensors (%s, cache sha256 %.12s…) are not used: this builder takes no calibration input yet",
		len(c.Ranges), c.Algorithm, sha))
	return notes
}
