package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"tsconnect/internal/metrics/metricstest"
)

// TestControlOpsEndpoints: control answers /healthz and /readyz on its main listener, serves
// Prometheus metrics only on --metrics-listen (parsed with the Prometheus text parser), and
// with --log-format json writes every log line as a JSON object naming its component.
func TestControlOpsEndpoints(t *testing.T) {
	dir := t.TempDir()
	addr, maddr := freePort(t), freePort(t)
	url := "http://" + addr
	ctrl := startProc(t, "control", "--listen", addr, "--state", dir, "--metrics-listen", maddr, "--log-format", "json")
	waitHTTP(t, url+"/")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 404} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	m := metricstest.Scrape(t, "http://"+maddr+"/metrics")
	if !m.Has("go_goroutines") || !m.Has("process_resident_memory_bytes") {
		t.Errorf("control's metrics lack the runtime's: %v", m)
	}
	cli(t, "users", "create", "--state", dir, "ops@example.com")

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(ctrl.out.String()))
	for sc.Scan() {
		var rec struct {
			Time, Level, Msg, Component string
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Time == "" || rec.Level != "INFO" || rec.Msg == "" {
			t.Errorf("a log line that is not a JSON record with time, level and msg: %q (%v)", sc.Text(), err)
			continue
		}
		if strings.Contains(rec.Msg, "created user") && rec.Component != "control" {
			t.Errorf("log record %+v: want component control", rec)
		}
		lines++
	}
	if lines < 2 {
		t.Errorf("only %d JSON log lines:\n%s", lines, ctrl.out.String())
	}
}
