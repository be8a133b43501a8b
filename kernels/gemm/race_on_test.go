//go:build race

package gemm

// raceEnabled drops the largest shapes under the race detector (10×
// slower); the smaller ones still cover every tile edge and path.
const raceEnabled = true
