//go:build !race

package train

const raceEnabled = false

// RaceEnabled lets the external tests (package train_test) shrink their work.
var RaceEnabled = raceEnabled
