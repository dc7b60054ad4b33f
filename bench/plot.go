package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// minPlotMs is the floor of the latency axis, which is logarithmic and so
// cannot show 0.
const minPlotMs = 0.01

// writePlot draws the p50 and p99 end-to-end latency of the sweep results
// against their offered rate, one pair of lines per store, on log-log axes,
// and saves it as a PNG file.
func writePlot(path string, sweep []ScenarioResult) error {
	p := plot.New()
	p.Title.Text = "Data Pusher end-to-end latency (steady scenario)"
	p.X.Label.Text = "offered load (events/s)"
	p.Y.Label.Text = "latency, event sent to delivery arrived (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	var rates []float64
	for i, store := range storesOf(sweep) {
		var p50, p99 plotter.XYs
		for _, r := range sweep {
			if r.Store != store || r.Error != "" || r.EndToEnd.Count == 0 {
				continue
			}
			p50 = append(p50, plotter.XY{X: r.OfferedRate, Y: max(r.EndToEnd.P50Ms, minPlotMs)})
			p99 = append(p99, plotter.XY{X: r.OfferedRate, Y: max(r.EndToEnd.P99Ms, minPlotMs)})
			if !slices.Contains(rates, r.OfferedRate) {
				rates = append(rates, r.OfferedRate)
			}
		}
		if len(p50) == 0 {
			continue
		}
		// One color per store; p50 is solid and p99 dashed.
		for _, series := range []struct {
			name   string
			points plotter.XYs
			dashes []vg.Length
		}{
			{store + " p50", p50, nil},
			{store + " p99", p99, []vg.Length{vg.Points(6), vg.Points(3)}},
		} {
			line, points, err := plotter.NewLinePoints(series.points)
			if err != nil {
				return fmt.Errorf("draw latency plot: %w", err)
			}
			line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
			line.Dashes = series.dashes
			points.Shape = plotutil.Shape(i)
			p.Add(line, points)
			p.Legend.Add(series.name, line, points)
		}
	}
	if len(rates) == 0 {
		return errors.New("draw latency plot: no sweep point has latencies")
	}

	// Tick the offered rates themselves, which a log axis would label
	// only at powers of ten.
	slices.Sort(rates)
	var ticks plot.ConstantTicks
	for _, rate := range rates {
		ticks = append(ticks, plot.Tick{Value: rate, Label: strconv.FormatFloat(rate, 'g', -1, 64)})
	}
	p.X.Tick.Marker = ticks
	if len(rates) == 1 {
		p.X.Min, p.X.Max = rates[0]/2, rates[0]*2
	}

	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save latency plot: %w", err)
	}
	return nil
}

// storesOf returns the stores of results in their first order.
func storesOf(results []ScenarioResult) []string {
	var stores []string
	for _, r := range results {
		if !slices.Contains(stores, r.Store) {
			stores = append(stores, r.Store)
		}
	}
	return stores
}
