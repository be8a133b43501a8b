//go:build race

package train

// raceEnabled skips the tests that train on real data under the race
// detector (10× slower); the parallel code is covered there by the
// determinism and gradient tests.
const raceEnabled = true

// RaceEnabled lets the external tests (package train_test) shrink their work.
var RaceEnabled = raceEnabled
