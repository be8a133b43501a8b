// Package progress shows the progress of long jobs (training epochs,
// calibration batches). On a terminal it draws a bar with
// github.com/schollz/progressbar; anywhere else (a log file, CI, a pipe) it
// prints an occasional plain line instead, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Options adjust a Bar. The zero value writes to os.Stdout and picks the
// style from whether it is a terminal.
type Options struct {
	// Out receives the progress; os.Stdout when nil.
	Out io.Writer
	// Terminal forces the style: nil detects it (a *os.File that is a
	// terminal gets a bar), otherwise true draws a bar and false prints
	// plain lines.
	Terminal *bool
	// Interval is the least time between two plain lines (default 5s),
	// except that crossing a tenth of the total always prints one.
	Interval time.Duration
	// Unit names what is counted ("batches"); used in plain lines and as
	// the bar's rate unit.
	Unit string
}

// Bar reports progress towards a total (or an open-ended count when total
// is negative). Its methods are safe for concurrent use.
type Bar struct {
	mu   sync.Mutex
	bar  *progressbar.ProgressBar // nil in plain mode
	out  io.Writer
	opt  Options
	desc string
	// Plain mode state.
	total, n    int64
	detail      string
	start, last time.Time
	lastTenth   int64
	done        bool
	now         func() time.Time
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a bar for total steps (negative: unknown) described by desc
// ("calibrate", "epoch 3/10").
func New(total int64, desc string, opt Options) *Bar {
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Second
	}
	b := &Bar{out: opt.Out, opt: opt, desc: desc, total: total, now: time.Now}
	b.start = b.now()
	b.last = b.start
	tty := IsTerminal(opt.Out)
	if opt.Terminal != nil {
		tty = *opt.Terminal
	}
	if tty {
		unit := opt.Unit
		if unit == "" {
			unit = "it"
		}
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(opt.Out),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opt.Out) }),
			progressbar.OptionSetPredictTime(true),
		)
	}
	return b
}

// Add advances the bar by n steps.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(b.n + n)
}

// Set moves the bar to n steps done.
func (b *Bar) Set(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(n)
}

// Detail sets a short status shown with the progress ("loss 0.123").
func (b *Bar) Detail(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detail = s
	if b.bar != nil {
		if s != "" {
			s = b.desc + " (" + s + ")"
		} else {
			s = b.desc
		}
		b.bar.Describe(s)
	}
}

func (b *Bar) set(n int64) {
	if b.done {
		return
	}
	b.n = n
	if b.bar != nil {
		b.bar.Set64(n)
		return
	}
	now := b.now()
	tenth := int64(-1)
	if b.total > 0 {
		tenth = min(n, b.total) * 10 / b.total
	}
	if b.total > 0 && n >= b.total {
		return // Finish prints the last line
	}
	if tenth > b.lastTenth || now.Sub(b.last) >= b.opt.Interval {
		b.lastTenth = max(b.lastTenth, tenth)
		b.last = now
		b.line(now, false)
	}
}

// Finish completes the bar (printing the final state) and stops it.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	if b.bar != nil {
		if b.total > 0 {
			b.bar.Set64(b.total)
		}
		b.bar.Finish()
	} else {
		b.line(b.now(), true)
	}
	b.done = true
}

// line prints one plain progress line: "calibrate: 40/100 batches (40%),
// 1.2s elapsed, ~1.8s left, loss 0.12".
func (b *Bar) line(now time.Time, final bool) {
	el := now.Sub(b.start)
	s := b.desc + ": "
	unit := ""
	if b.opt.Unit != "" {
		unit = " " + b.opt.Unit
	}
	if b.total > 0 {
		s += fmt.Sprintf("%d/%d%s (%d%%)", b.n, b.total, unit, b.n*100/b.total)
	} else {
		s += fmt.Sprintf("%d%s", b.n, unit)
	}
	s += fmt.Sprintf(", %v elapsed", roundDur(el))
	if !final && b.total > 0 && b.n > 0 && b.n < b.total {
		left := time.Duration(float64(el) * float64(b.total-b.n) / float64(b.n))
		s += fmt.Sprintf(", ~%v left", roundDur(left))
	}
	if final {
		s += ", done"
	}
	if b.detail != "" {
		s += ", " + b.detail
	}
	fmt.Fprintln(b.out, s)
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
