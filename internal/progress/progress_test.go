package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time { t = t.Add(step); return t }
}

func plain(out *bytes.Buffer, total int64, opt Options) *Bar {
	f := false
	opt.Out, opt.Terminal = out, &f
	b := New(total, "calibrate", opt)
	b.now = fakeClock(time.Millisecond)
	b.start, b.last = time.Unix(0, 0), time.Unix(0, 0)
	return b
}

func TestPlainLinesEveryTenth(t *testing.T) {
	var out bytes.Buffer
	b := plain(&out, 100, Options{Unit: "batches", Interval: time.Hour})
	for i := 0; i < 100; i++ {
		b.Add(1)
	}
	b.Detail("amax 3.2")
	b.Finish()
	b.Finish() // idempotent
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 { // 10%..90%, then the final line
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	if !strings.HasPrefix(lines[0], "calibrate: 10/100 batches (10%), ") || !strings.Contains(lines[0], "left") {
		t.Errorf("first line %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "calibrate: 100/100 batches (100%)") || !strings.Contains(last, "done, amax 3.2") {
		t.Errorf("last line %q", last)
	}
}

func TestPlainLinesByTimeWhenTotalUnknown(t *testing.T) {
	var out bytes.Buffer
	b := plain(&out, -1, Options{Interval: 10 * time.Millisecond})
	for i := 0; i < 100; i++ { // one simulated millisecond per step
		b.Add(1)
	}
	b.Finish()
	n := strings.Count(out.String(), "\n")
	if n < 9 || n > 11 {
		t.Fatalf("%d lines, want about 10:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "calibrate: 100, ") {
		t.Errorf("no final count:\n%s", out.String())
	}
}

func TestTerminalBar(t *testing.T) {
	var out bytes.Buffer
	tr := true
	b := New(10, "train", Options{Out: &out, Terminal: &tr, Unit: "steps"})
	for i := 0; i < 10; i++ {
		b.Add(1)
	}
	b.Detail("loss 0.5")
	b.Finish()
	s := out.String()
	if !strings.Contains(s, "train") || !strings.Contains(s, "10/10") {
		t.Fatalf("bar output %q", s)
	}
}

func TestNotATerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is not a terminal")
	}
}

func TestConcurrentAdds(t *testing.T) {
	var out bytes.Buffer
	b := plain(&out, 1000, Options{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				b.Add(1)
			}
		}()
	}
	wg.Wait()
	b.Finish()
	if !strings.Contains(out.String(), "1000/1000") {
		t.Fatalf("lost updates:\n%s", out.String())
	}
}
