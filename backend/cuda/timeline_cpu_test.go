package cudabackend

import (
	"testing"

	"github.com/kilnml/kiln/gpu/cuda"
)

// The lean timeline's events go back to the pool (or are destroyed) each
// exactly once: consecutive spans share an event, a chain broken by a host
// wait starts a new one, and the open span's start stays in use until it
// closes. (The spans' times need a GPU: TestLeanTimelineAndPDL.)
func TestTimelineEventsUnique(t *testing.T) {
	ev := make([]*cuda.Event, 6)
	for i := range ev {
		ev[i] = new(cuda.Event)
	}
	a, b, c, d, e, f := ev[0], ev[1], ev[2], ev[3], ev[4], ev[5]
	tl := timeline{spans: []span{{a, b, phH2D}, {b, c, phCompute}, {c, d, phD2H}, {e, f, phCompute}}}
	check := func(what string, got []*cuda.Event, want ...*cuda.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		seen := map[*cuda.Event]bool{}
		for i, g := range got {
			if seen[g] {
				t.Fatalf("%s: event %d listed twice", what, i)
			}
			seen[g] = true
			if g != want[i] {
				t.Fatalf("%s: event %d is not the expected one", what, i)
			}
		}
	}
	check("two chains, nothing open", tl.unique(false), a, b, c, d, e, f)
	check("the same with the open one", tl.events(), a, b, c, d, e, f)
	// a span opened at the last event: that event stays in use
	tl.open, tl.ph = f, phCompute
	check("open at the last end", tl.unique(false), a, b, c, d, e)
	check("open at the last end, all", tl.events(), a, b, c, d, e, f)
	// nothing closed yet, one span open
	tl = timeline{open: a, ph: phCompute}
	check("only an open span", tl.unique(false))
	check("only an open span, all", tl.events(), a)
}

// Timing.Sub and Add are field-wise: windows between ReadTimings.
func TestTimingSub(t *testing.T) {
	a := Timing{H2D: 5, Compute: 7, D2H: 3, Staging: 2, Steps: 9}
	b := Timing{H2D: 1, Compute: 2, D2H: 3, Staging: 1, Steps: 4}
	if got, want := a.Sub(b), (Timing{H2D: 4, Compute: 5, D2H: 0, Staging: 1, Steps: 5}); got != want {
		t.Fatalf("Sub = %+v, want %+v", got, want)
	}
	if got := a.Sub(b).Add(b); got != a {
		t.Fatalf("Sub then Add = %+v, want %+v", got, a)
	}
}
