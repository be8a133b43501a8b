package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// HumanBytes prints a byte count with a binary unit (1.5 MiB).
func HumanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// HumanCount prints a count with a metric suffix (1.2M).
func HumanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func shapeText(v Value) string {
	if v.Shape == nil {
		return v.Type
	}
	dims := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		dims[i] = d.String()
	}
	return v.DType + "[" + strings.Join(dims, ",") + "]"
}

// WriteText prints the report for people.
func (r *ModelReport) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("Model:      %s\n", r.Path)
	producer := strings.TrimSpace(r.Producer + " " + r.ProducerVersion)
	if producer == "" {
		producer = "(not given)"
	}
	p("Producer:   %s\n", producer)
	p("IR version: %d\n", r.IRVersion)
	var opsets []string
	for _, o := range r.Opsets {
		opsets = append(opsets, fmt.Sprintf("%s %d", o.Domain, o.Version))
	}
	p("Opsets:     %s\n", strings.Join(opsets, ", "))
	if r.Graph != "" {
		p("Graph:      %s\n", r.Graph)
	}
	values := func(title string, vs []Value) {
		p("\n%s (%d):\n", title, len(vs))
		tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		for _, v := range vs {
			fmt.Fprintf(tw, "  %s\t%s\n", v.Name, shapeText(v))
		}
		tw.Flush()
	}
	values("Inputs", r.Inputs)
	values("Outputs", r.Outputs)
	if len(r.InferredOutputs) > 0 {
		values("Inferred output types", r.InferredOutputs)
	}
	if len(r.InferenceWarnings) > 0 {
		p("\nShape inference warnings (%d):\n", len(r.InferenceWarnings))
		limitLines(ew, r.InferenceWarnings, 10)
	}
	if len(r.InferenceErrors) > 0 {
		p("\nShape inference found %d problem(s):\n", len(r.InferenceErrors))
		limitLines(ew, r.InferenceErrors, 10)
	}
	if r.InferenceFollowOn > 0 {
		p("\nShape inference is incomplete: it stops at the unsupported ops below (%d follow-on problem(s) not shown).\n",
			r.InferenceFollowOn)
	}
	if len(r.Problems) > 0 {
		p("\nThe graph is invalid (%d problem(s)):\n", len(r.Problems))
		limitLines(ew, r.Problems, 20)
	}
	p("\nNodes: %d\n", r.Nodes)
	width := 1
	if len(r.Ops) > 0 {
		width = len(fmt.Sprint(r.Ops[0].Count)) // sorted by count, largest first
	}
	for _, o := range r.Ops {
		p("  %*d  %s\n", width, o.Count, o.Op)
	}
	pr := r.Params
	p("\nParameters: %s elements, %s (%d initializers: %s elements, %s; %d Constant nodes: %s elements, %s)\n",
		HumanCount(pr.Elems), HumanBytes(pr.Bytes), pr.Initializers, HumanCount(pr.InitializerElems),
		HumanBytes(pr.InitializerBytes), pr.Constants, HumanCount(pr.ConstantElems), HumanBytes(pr.ConstantBytes))
	if len(r.Unsupported) == 0 {
		p("\nEvery op is supported by kiln's reference executor.\n")
	} else {
		p("\nUnsupported ops (%d):\n", len(r.Unsupported))
		for _, u := range r.Unsupported {
			p("  %s (domain %s, opset %d) %s; %d node(s):\n", u.Op, u.Domain, u.Opset, u.Reason, len(u.Nodes))
			wrap(ew, u.Nodes, "    ", 100)
		}
	}
	return ew.err
}

// wrap prints words joined by ", " in lines of about width characters.
func wrap(ew *errWriter, words []string, indent string, width int) {
	line := indent
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			ew.printf("%s\n", line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	ew.printf("%s\n", line)
}

func limitLines(ew *errWriter, lines []string, n int) {
	for i, l := range lines {
		if i == n {
			ew.printf("  ... and %d more\n", len(lines)-n)
			break
		}
		ew.printf("  %s\n", l)
	}
}

// errWriter keeps the first write error so that printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return len(b), nil
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, nil
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
