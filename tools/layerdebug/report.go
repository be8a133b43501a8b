package layerdebug

import (
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/kilnml/kiln/ir"
	"github.com/kilnml/kiln/quant/calib"
)

// Chart size: PNGs are ChartWidth × ChartHeight at ChartDPI.
const (
	ChartWidth  = 7 * vg.Inch
	ChartHeight = 4 * vg.Inch
	ChartDPI    = 96
)

// ChartPixels is the size in pixels of every PNG the report writes.
func ChartPixels() (w, h int) {
	return int(math.Round(float64(ChartWidth/vg.Inch) * ChartDPI)), int(math.Round(float64(ChartHeight/vg.Inch) * ChartDPI))
}

// ReportData is what a report shows; absent parts are left out.
type ReportData struct {
	Title string
	// Activation histograms: stats from Stats, or collected from Data over
	// the float Model (at most MaxBatches batches).
	Model      *ir.Model
	Data       calib.Stream
	MaxBatches int
	Stats      *calib.Stats
	Tensors    []string // which tensors to draw (default: the quantized layers' inputs, or the per-layer tensors)
	PerLayer   *PerLayer
	Search     *SearchResult
}

// ReportFiles lists what WriteReport wrote.
type ReportFiles struct {
	Index string
	PNGs  []string
}

// MaxHistograms bounds the number of histogram charts.
const MaxHistograms = 24

type chart struct {
	File, Caption string
}

// WriteReport writes PNG charts and an index.html showing them into dir.
func WriteReport(dir string, d ReportData) (*ReportFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := &ReportFiles{Index: filepath.Join(dir, "index.html")}
	var charts []chart
	add := func(p *plot.Plot, file, caption string) error {
		path := filepath.Join(dir, file)
		if err := savePNG(p, path); err != nil {
			return fmt.Errorf("chart %s: %w", file, err)
		}
		out.PNGs = append(out.PNGs, path)
		charts = append(charts, chart{file, caption})
		return nil
	}
	if d.PerLayer != nil && len(d.PerLayer.Blame) > 0 {
		if err := add(blameChart(d.PerLayer.Blame), "blame.png", "Error added by each layer (noise/signal energy of its output minus its inputs')"); err != nil {
			return nil, err
		}
	}
	if d.Search != nil {
		p, err := paretoChart(d.Search)
		if err != nil {
			return nil, err
		}
		if err := add(p, "pareto.png", "Latency vs "+string(d.Search.Budget.Metric)+" of every configuration tried; the line joins the Pareto front"); err != nil {
			return nil, err
		}
		if err := add(sensitivityChart(d.Search), "sensitivity.png", "Per-layer sensitivity: score with only this layer in FP32, and with only this layer quantized"); err != nil {
			return nil, err
		}
	}
	st := d.Stats
	if st == nil && d.Model != nil && d.Data != nil {
		var err error
		if st, _, err = Calibrate(d.Model, d.Data, calib.Entropy2, d.MaxBatches); err != nil {
			return nil, fmt.Errorf("activation statistics: %w", err)
		}
	}
	if st != nil {
		names := d.Tensors
		if len(names) == 0 {
			names = defaultTensors(d, st)
		}
		for i, name := range names {
			if i >= MaxHistograms {
				break
			}
			ts := st.Tensors[name]
			if ts == nil || ts.Count == 0 {
				continue
			}
			p, err := histogramChart(ts)
			if err != nil {
				return nil, err
			}
			if err := add(p, fmt.Sprintf("hist_%02d_%s.png", i, fileSafe(name)), "Activation histogram of "+name+" with each calibrator's threshold"); err != nil {
				return nil, err
			}
		}
	}
	if len(charts) == 0 {
		return nil, errors.New("report: nothing to draw")
	}
	if err := writeIndex(out.Index, d, charts); err != nil {
		return nil, err
	}
	return out, nil
}

func defaultTensors(d ReportData, st *calib.Stats) []string {
	var names []string
	seen := map[string]bool{}
	addName := func(n string) {
		if !seen[n] && st.Tensors[n] != nil {
			seen[n] = true
			names = append(names, n)
		}
	}
	if d.PerLayer != nil {
		for _, t := range d.PerLayer.Tensors {
			addName(t.Tensor)
		}
	}
	if d.Model != nil {
		for _, n := range d.Model.Graph.Nodes {
			switch n.OpType {
			case "Conv", "Gemm", "MatMul":
				addName(n.Inputs[0])
			}
		}
	}
	if len(names) == 0 {
		names = append(names, st.Order...)
	}
	return names
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func fileSafe(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func savePNG(p *plot.Plot, path string) error {
	c, err := p.WriterTo(ChartWidth, ChartHeight, "png")
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var palette = []color.RGBA{
	{0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0x94, 0x67, 0xbd, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// histogramChart draws |x| counts (log scale, rebinned to at most 128
// bars) with a vertical line at each calibrator's threshold.
func histogramChart(ts *calib.TensorStats) (*plot.Plot, error) {
	h := ts.Hist
	p := plot.New()
	p.Title.Text = "|x| of " + ts.Name
	p.X.Label.Text = "|x|"
	p.Y.Label.Text = "count (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	n := len(h.Counts)
	group := max(1, (n+127)/128)
	var xys plotter.XYs
	top := 1.0
	for i := 0; i < n; i += group {
		c := 0.0
		for j := i; j < min(i+group, n); j++ {
			c += h.Counts[j]
		}
		x0, x1 := h.Edge(i), h.Edge(min(i+group, n))
		y := c + 1 // log scale: empty bins at 1
		xys = append(xys, plotter.XY{X: x0, Y: y}, plotter.XY{X: x1, Y: y})
		top = math.Max(top, y)
	}
	if len(xys) == 0 {
		return nil, fmt.Errorf("tensor %s has an empty histogram", ts.Name)
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	line.FillColor = color.NRGBA{0x1f, 0x77, 0xb4, 0x60}
	line.Color = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	p.Add(line)
	for k, algo := range calib.Algorithms {
		r, err := calib.ComputeRange(ts, algo, calib.Params{})
		if err != nil || r.Amax <= 0 {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: r.Amax, Y: 1}, {X: r.Amax, Y: top * 2}})
		if err != nil {
			return nil, err
		}
		l.Color = palette[k%len(palette)]
		l.Width = vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2 + float64(k))}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s %.4g", algo, r.Amax), l)
	}
	p.Legend.Top = true
	p.Y.Max = top * 1e3 // room for the legend above the threshold lines
	p.X.Max *= 1.03     // the minmax line sits on the last edge
	return p, nil
}

// blameChart: one bar per layer, the error it adds (×100: percent of the
// output's signal energy).
func blameChart(b []Blame) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Error added per layer"
	p.Y.Label.Text = "added noise/signal (%)"
	rows := append([]Blame(nil), b...)
	if len(rows) > 20 {
		rows = rows[:20]
	}
	vals := make(plotter.Values, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		vals[i] = 100 * r.Added
		names[i] = shortName(r.Layer) + " [" + r.Precision + "]"
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(18))
	if err == nil {
		bars.Color = palette[0]
		p.Add(bars)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = -1 // text.XRight
	return p
}

func shortName(s string) string {
	if len(s) > 28 {
		return s[:25] + "..."
	}
	return s
}

func paretoChart(s *SearchResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency vs " + string(s.Budget.Metric)
	p.X.Label.Text = "latency (µs, median)"
	p.Y.Label.Text = string(s.Budget.Metric)
	var all, front plotter.XYs
	for _, pt := range s.Points {
		all = append(all, plotter.XY{X: float64(pt.Latency.Nanoseconds()) / 1e3, Y: pt.Score})
	}
	var labels []string
	for _, pt := range s.Pareto {
		front = append(front, plotter.XY{X: float64(pt.Latency.Nanoseconds()) / 1e3, Y: pt.Score})
		labels = append(labels, fmt.Sprintf("%d kept", len(pt.Keep)))
	}
	sc, err := plotter.NewScatter(all)
	if err != nil {
		return nil, err
	}
	sc.Color = color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
	p.Add(sc)
	p.Legend.Add("configurations", sc)
	if len(front) > 0 {
		l, pts, err := plotter.NewLinePoints(front)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = palette[0], palette[0]
		p.Add(l, pts)
		p.Legend.Add("Pareto front", l)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: front, Labels: labels})
		if err == nil {
			p.Add(lb)
		}
	}
	if s.Best != nil {
		b, err := plotter.NewScatter(plotter.XYs{{X: float64(s.Best.Latency.Nanoseconds()) / 1e3, Y: s.Best.Score}})
		if err == nil {
			b.Color = palette[1]
			b.Radius = vg.Points(5)
			p.Add(b)
			p.Legend.Add("chosen", b)
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}

func sensitivityChart(s *SearchResult) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Per-layer sensitivity (" + string(s.Budget.Metric) + ")"
	kept := make(plotter.Values, len(s.Layers))
	quant := make(plotter.Values, len(s.Layers))
	names := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		kept[i], quant[i] = l.OnlyKept, l.OnlyQuantized
		names[i] = shortName(l.Layer)
	}
	w := vg.Points(12)
	if b, err := plotter.NewBarChart(kept, w); err == nil {
		b.Color = palette[1]
		b.Offset = -w / 2
		p.Add(b)
		p.Legend.Add("only this layer fp32", b)
	}
	if b, err := plotter.NewBarChart(quant, w); err == nil {
		b.Color = palette[0]
		b.Offset = w / 2
		p.Add(b)
		p.Legend.Add("only this layer quantized", b)
	}
	lo, hi := math.Min(s.AllQ.Score, s.FP32.Score), math.Max(s.AllQ.Score, s.FP32.Score)
	for i := range kept {
		lo = math.Min(lo, math.Min(kept[i], quant[i]))
		hi = math.Max(hi, math.Max(kept[i], quant[i]))
	}
	span := math.Max(hi-lo, 1e-9)
	p.Y.Min, p.Y.Max = lo-0.1*span, hi+0.35*span // room for the legend above the bars
	n := float64(len(s.Layers))
	for k, ref := range []struct {
		name string
		v    float64
	}{{"all fp32", s.FP32.Score}, {"all quantized", s.AllQ.Score}} {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: ref.v}, {X: n - 0.5, Y: ref.v}})
		if err != nil {
			continue
		}
		l.Color = palette[2+k]
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(ref.name, l)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	return p
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:1em}td,th{padding:2px 8px;text-align:left}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Best}}<p>Chosen: {{.Best}}</p>{{end}}
{{if .Blame}}<h2>Blame</h2><table><tr><th>layer</th><th>precision</th><th>output</th><th>added (%)</th><th>SQNR dB</th></tr>
{{range .Blame}}<tr><td>{{.Layer}}</td><td>{{.Precision}}</td><td>{{.Tensor}}</td><td>{{printf "%.4g" .AddedPct}}</td><td>{{printf "%.4g" .SQNR}}</td></tr>{{end}}</table>{{end}}
{{range .Charts}}<figure><img src="{{.File}}" alt="{{.Caption}}"><figcaption>{{.Caption}}</figcaption></figure>
{{end}}
</body></html>
`))

func writeIndex(path string, d ReportData, charts []chart) error {
	type blameRow struct {
		Blame
		AddedPct float64
	}
	v := struct {
		Title  string
		Best   string
		Blame  []blameRow
		Charts []chart
	}{Title: d.Title, Charts: charts}
	if v.Title == "" {
		v.Title = "kiln accuracy report"
	}
	if d.PerLayer != nil {
		for _, b := range d.PerLayer.Blame {
			if math.IsInf(b.SQNR, 0) {
				b.SQNR = 999
			}
			v.Blame = append(v.Blame, blameRow{b, 100 * b.Added})
		}
	}
	if s := d.Search; s != nil && s.Best != nil {
		k := append([]string(nil), s.Best.Keep...)
		sort.Strings(k)
		v.Best = fmt.Sprintf("keep %s in fp32: %s %.4g, latency %v (--layer-precisions '%s')", orNone(k), s.Budget.Metric, s.Best.Score, s.Best.Latency, strings.TrimSpace(LayerPrecisionsFlag(s.Best.Keep)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := indexTmpl.Execute(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
