// Package metricstest reads Prometheus metrics in tests: a scrape parsed with the Prometheus
// text parser, or a gatherer's samples, as a map from `name{label="v",…}` to the value.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples maps `name` or `name{a="x",b="y"}` (labels sorted) to a sample's value.
type Samples map[string]float64

// Scrape GETs url and parses the answer with the Prometheus text parser.
func Scrape(t testing.TB, url string) Samples {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s is not the Prometheus text format: %v", url, err)
	}
	return samples(fams)
}

// Gather collects g's metrics.
func Gather(t testing.TB, g prometheus.Gatherer) Samples {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return samples(m)
}

// Of collects c alone.
func Of(t testing.TB, c prometheus.Collector) Samples {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return Gather(t, reg)
}

func samples(fams map[string]*dto.MetricFamily) Samples {
	s := Samples{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			var ls string
			if len(labels) > 0 {
				ls = "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				s[name+ls] = m.Counter.GetValue()
			case m.Gauge != nil:
				s[name+ls] = m.Gauge.GetValue()
			case m.Untyped != nil:
				s[name+ls] = m.Untyped.GetValue()
			case m.Histogram != nil:
				s[name+"_count"+ls] = float64(m.Histogram.GetSampleCount())
				s[name+"_sum"+ls] = m.Histogram.GetSampleSum()
			case m.Summary != nil:
				s[name+"_count"+ls] = float64(m.Summary.GetSampleCount())
				s[name+"_sum"+ls] = m.Summary.GetSampleSum()
			}
		}
	}
	return s
}

// Has tells whether a sample named key exists.
func (s Samples) Has(key string) bool { _, ok := s[key]; return ok }
