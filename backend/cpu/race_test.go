//go:build race

package cpu

// raceOn: the race detector is on (sync.Pool drops items on purpose, and
// whole-model tests are too slow under it).
const raceOn = true
