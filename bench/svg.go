package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// SVG layout, in pixels.
const (
	svgWidth    = 760
	svgHeader   = 64
	panelHeight = 230
	plotLeft    = 70
	plotRight   = 24
	plotTop     = 34 // below the panel's title
	plotBottom  = 46 // room for the x labels and axis title
)

// WriteSVGFile writes the latency histograms to path.
func (rep *Report) WriteSVGFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--histogram: %w", err)
	}
	if err := rep.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("--histogram %s: %w", path, err)
	}
	return f.Close()
}

// WriteSVG draws one latency histogram per operation with successful
// samples (log-scale x axis in ms, counts on y, p50 and p99 marked),
// stacked, under a title with the scenario, concurrency and date. Plain
// SVG 1.1, no scripts, no external resources.
func (rep *Report) WriteSVG(w io.Writer) error {
	var panels []OpStats
	for _, o := range rep.Operations {
		if len(o.Histogram) > 0 {
			panels = append(panels, o)
		}
	}
	height := svgHeader + max(len(panels), 1)*panelHeight
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	title := fmt.Sprintf("keel-bench %s · concurrency %d · %s", rep.Scenario, rep.Params.Concurrency, rep.Start.Format("2006-01-02 15:04 UTC"))
	sub := fmt.Sprintf("%s (compute %s) · %d iterations, %d failed · wall %.2f s",
		rep.Target.ComputeURL, rep.Target.Microversion, rep.Iterations.Done, rep.Iterations.Failed, rep.WallSeconds)
	text(&b, svgWidth/2, 26, 17, "middle", "bold", title)
	text(&b, svgWidth/2, 46, 11, "middle", "", sub)
	if len(panels) == 0 {
		text(&b, svgWidth/2, svgHeader+panelHeight/2, 13, "middle", "", "no successful operation: nothing to draw")
	}
	for i, o := range panels {
		panel(&b, o, svgHeader+i*panelHeight)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// panel draws one operation's histogram with its top at y0.
func panel(b *strings.Builder, o OpStats, y0 int) {
	left, right := float64(plotLeft), float64(svgWidth-plotRight)
	top, bottom := float64(y0+plotTop), float64(y0+panelHeight-plotBottom)
	h := o.Histogram
	// x domain: the buckets plus one empty bucket each side, at least
	// 0.6 decade wide so the 1-2-5 (or finer) ticks have room
	lo, hi := math.Log10(h[0].LoMs)-0.1, math.Log10(h[len(h)-1].HiMs)+0.1
	if pad := (0.6 - (hi - lo)) / 2; pad > 0 {
		lo, hi = lo-pad, hi+pad
	}
	x := func(ms float64) float64 { return left + (math.Log10(ms)-lo)/(hi-lo)*(right-left) }
	maxCount := 0
	for _, k := range h {
		maxCount = max(maxCount, k.Count)
	}
	step := niceStep(float64(maxCount) / 4)
	ymax := math.Ceil(float64(maxCount)/step) * step
	y := func(c float64) float64 { return bottom - c/ymax*(bottom-top) }

	text(b, plotLeft, y0+20, 13, "start", "bold",
		fmt.Sprintf("%s  —  n=%d, p50 %s ms, p90 %s ms, p99 %s ms, max %s ms", o.Name, o.Count-o.Errors,
			msCell(o, o.P50Ms), msCell(o, o.P90Ms), msCell(o, o.P99Ms), msCell(o, o.MaxMs)))
	// y grid and labels
	for c := 0.0; c <= ymax+step/2; c += step {
		yy := y(c)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4" stroke-width="1"/>`+"\n", left, yy, right, yy)
		text(b, plotLeft-6, int(yy)+4, 10, "end", "", strconv.FormatFloat(c, 'f', -1, 64))
	}
	// bars
	for _, k := range h {
		if k.Count == 0 {
			continue
		}
		x0, x1 := x(k.LoMs), x(k.HiMs)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4878b8"><title>%s</title></rect>`+"\n",
			x0+0.5, y(float64(k.Count)), math.Max(x1-x0-1, 0.5), bottom-y(float64(k.Count)),
			esc(fmt.Sprintf("%s–%s ms: %d", fmtMs(k.LoMs), fmtMs(k.HiMs), k.Count)))
	}
	// axes
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="1"/>`+"\n", left, bottom, right, bottom)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="1"/>`+"\n", left, top, left, bottom)
	for _, t := range logTicks(math.Pow(10, lo), math.Pow(10, hi)) {
		xx := x(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="1"/>`+"\n", xx, bottom, xx, bottom+4)
		text(b, int(math.Round(xx)), int(bottom)+16, 10, "middle", "", fmtMs(t))
	}
	text(b, int((left+right)/2), y0+panelHeight-10, 11, "middle", "", "latency (ms, log scale)")
	fmt.Fprintf(b, `<text x="16" y="%.1f" font-size="11" text-anchor="middle" transform="rotate(-90 16 %.1f)">count</text>`+"\n",
		(top+bottom)/2, (top+bottom)/2)
	// p50 and p99
	for _, m := range []struct {
		label string
		v     float64
		color string
		dy    float64 // labels one above the other when the lines meet
	}{{"p50", o.P50Ms, "#2a9d3a", 10}, {"p99", o.P99Ms, "#d0402a", 22}} {
		if m.v <= 0 {
			continue
		}
		xx := math.Min(math.Max(x(m.v), left), right)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n",
			xx, top, xx, bottom, m.color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" fill="%s" text-anchor="start" stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n", xx+3, top+m.dy, m.color, m.label)
	}
}

// logTicks are round values within [lo, hi]: 1-2-5 per decade, or finer
// steps when that gives fewer than four.
func logTicks(lo, hi float64) []float64 {
	var out []float64
	for _, set := range [][]float64{{1, 2, 5}, {1, 2, 3, 5, 7}, {1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9}} {
		out = out[:0]
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range set {
				if v := m * math.Pow(10, e); v >= lo && v <= hi {
					out = append(out, v)
				}
			}
		}
		if len(out) >= 4 {
			break
		}
	}
	return out
}

// niceStep is the smallest 1-2-5 step not below raw (at least 1).
func niceStep(raw float64) float64 {
	if raw <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// fmtMs writes a millisecond figure with 3 significant digits (whole
// numbers from 100 up), without trailing zeros.
func fmtMs(v float64) string {
	if v >= 100 || v <= 0 {
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	d := 2 - int(math.Floor(math.Log10(v)))
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func text(b *strings.Builder, x, y, size int, anchor, weight, s string) {
	w := ""
	if weight != "" {
		w = ` font-weight="` + weight + `"`
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="%d" text-anchor="%s"%s>%s</text>`+"\n", x, y, size, anchor, w, esc(s))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
