package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"tsconnect/internal/metrics"
)

// opsFlags are the operations flags of the servers (control, derp, up): a metrics
// listener of its own and the log format.
type opsFlags struct {
	metricsListen string
	logFormat     string
}

func (f *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9100); off by default")
	fs.StringVar(&f.logFormat, "log-format", "text", "log lines as text or as json (one object a line: time, level, component, msg)")
}

// apply sets the log format; call it first.
func (f *opsFlags) apply() error {
	switch f.logFormat {
	case "text":
	case "json":
		log.SetFlags(0)
		log.SetOutput(jsonLog{slog.New(slog.NewJSONHandler(os.Stderr, nil))})
	default:
		return fmt.Errorf("--log-format %q: want text or json", f.logFormat)
	}
	return nil
}

// serveMetrics starts the metrics listener, if asked for, with cs registered.
func (f *opsFlags) serveMetrics(ctx context.Context, cs ...prometheus.Collector) error {
	if f.metricsListen == "" {
		return nil
	}
	_, err := metrics.Serve(ctx, f.metricsListen, metrics.NewRegistry(cs...), logfTo(""))
	return err
}

// component is a log line's "name: " prefix, as every package writes it.
var component = regexp.MustCompile(`^([a-z][a-z0-9-]*): `)

// jsonLog turns the standard logger's lines into JSON objects.
type jsonLog struct{ l *slog.Logger }

func (j jsonLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	var attrs []any
	if m := component.FindStringSubmatch(line); m != nil {
		attrs = append(attrs, "component", m[1])
		line = line[len(m[0]):]
	}
	j.l.Info(line, attrs...)
	return len(p), nil
}
