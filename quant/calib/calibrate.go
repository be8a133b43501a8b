package calib

import (
	"fmt"
	"os"
	"strings"

	"github.com/kilnml/kiln/ops"
	"github.com/kilnml/kiln/version"
)

// Request describes one calibration, with or without a cache.
type Request struct {
	Session   *ops.Session
	ModelHash string // sha256 (hex) of the model file, recorded in the sidecar
	Source    Stream // nil is allowed when a valid cache exists
	Algorithm Algorithm
	Params    Params
	// CachePath, when set, is read if present (unless Force) and written
	// after calibrating, with its sidecar.
	CachePath  string
	Force      bool
	TRTVersion string // digits for the cache header; DefaultTRTVersion when empty
	Collect    CollectOptions
}

// Result is the outcome of Calibrate.
type Result struct {
	Ranges    []Range
	Stats     *Stats // nil when the ranges came from the cache
	FromCache bool
	Warnings  []string
}

// Calibrate returns a range for every activation of the model: from the
// cache when one exists and matches (model, algorithm, parameters), else by
// collecting statistics over Source and applying the algorithm, then
// writing the cache and its sidecar. A stale cache is an error that says
// what changed; Force recalibrates.
func Calibrate(req Request) (*Result, error) {
	if req.CachePath != "" && !req.Force {
		res, err := fromCache(req)
		if err != nil || res != nil {
			return res, err
		}
	}
	if req.Source == nil {
		return nil, fmt.Errorf("no calibration data and no usable cache")
	}
	stats, err := Collect(req.Session, req.Source, req.Collect)
	if err != nil {
		return nil, err
	}
	ranges, err := ComputeRanges(stats, req.Algorithm, req.Params)
	if err != nil {
		return nil, err
	}
	for i := range ranges {
		ranges[i].Amax = roundTripAmax(ranges[i].Amax)
	}
	res := &Result{Ranges: ranges, Stats: stats, Warnings: append([]string(nil), stats.Notes...)}
	for _, r := range ranges {
		if r.Fallback != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("tensor %q: %s", r.Name, r.Fallback))
		}
	}
	if req.CachePath != "" {
		cache := NewCache(req.TRTVersion, req.Algorithm, ranges)
		side := newSidecar(version.Version, ranges)
		side.ModelSHA256, side.DataSHA256 = req.ModelHash, stats.DataHash
		side.Batches, side.BatchSize = stats.Batches, req.Source.BatchSize()
		side.Algorithm, side.Params, side.TRTVersion = req.Algorithm, req.Params.withDefaults(), cache.Version
		side.Notes = stats.Notes
		js, err := side.Marshal()
		if err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(req.CachePath, cache.Marshal()); err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(SidecarPath(req.CachePath), js); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// roundTripAmax rounds a threshold through the float32 scale a TensorRT
// cache stores, so an engine built right after calibrating is identical to
// one built later from the cache it wrote (TensorRT, too, builds from the
// float32 scale).
func roundTripAmax(amax float64) float64 {
	return float64(float32(amax/127)) * 127
}

// fromCache returns (nil, nil) when there is no cache file.
func fromCache(req Request) (*Result, error) {
	if _, err := os.Stat(req.CachePath); os.IsNotExist(err) {
		return nil, nil
	}
	cache, err := ReadCacheFile(req.CachePath)
	if err != nil {
		return nil, err
	}
	if err := cache.CheckAlgorithm(req.Algorithm); err != nil {
		return nil, fmt.Errorf("%s: %w", req.CachePath, err)
	}
	side, err := ReadSidecar(SidecarPath(req.CachePath))
	if err != nil {
		return nil, err
	}
	res := &Result{FromCache: true}
	if side == nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s has no sidecar (%s): kiln cannot tell whether it matches this model and data",
			req.CachePath, SidecarPath(req.CachePath)))
	} else {
		want := &Sidecar{ModelSHA256: req.ModelHash, Algorithm: req.Algorithm, Params: req.Params}
		if mm := side.Mismatches(want); len(mm) > 0 {
			return nil, fmt.Errorf("%s is stale: %s; use --force to recalibrate", req.CachePath, strings.Join(mm, "; "))
		}
	}
	for _, name := range cache.Names {
		amax, _ := cache.Amax(name)
		r := Range{Name: name, Amax: amax, Min: -amax, Max: amax}
		if side != nil {
			if t, ok := side.Tensors[name]; ok {
				r.Min, r.Max = t.Min, t.Max
			}
		}
		res.Ranges = append(res.Ranges, r)
	}
	if side == nil && req.Session != nil {
		// Without a sidecar, at least check that the float activations of
		// this model have ranges in the cache.
		if missing := missingRanges(req.Session, cache); len(missing) > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the cache has no range for %d activation(s) of this model (%s): was it made for another model?",
				len(missing), strings.Join(missing[:min(3, len(missing))], ", ")))
		}
	}
	return res, nil
}

func missingRanges(sess *ops.Session, cache *Cache) []string {
	types, _ := ops.InferTypes(sess.Model())
	consts := constantValues(sess.Model().Graph)
	var missing []string
	for _, n := range sess.Model().Graph.Nodes {
		for _, o := range n.Outputs {
			t := types[o]
			if o == "" || consts[o] || t == nil || !t.DType.IsFloat() {
				continue
			}
			if _, ok := cache.Scales[o]; !ok {
				missing = append(missing, o)
			}
		}
	}
	return missing
}
