package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tsconnect/internal/metrics/metricstest"
	"tsconnect/node"
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
	cli(t, "users", "create", "--state", dir, "ops@example.com")
	polFile := filepath.Join(t.TempDir(), "policy.hujson")
	os.WriteFile(polFile, []byte(ownNodesPolicy), 0o600)
	cli(t, "policy", "set", "--state", dir, polFile)
	key := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "ops@example.com"))
	n, err := node.New(node.Options{ControlURL: url, AuthKey: key, Hostname: "laptop", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A wrong console password: a failed authentication.
	req, _ := http.NewRequest("POST", url+"/api/v1/login", strings.NewReader(`{"email":"ops@example.com","password":"wrong"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", url)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %s, want 401", resp.Status)
	}

	m := metricstest.Scrape(t, "http://"+maddr+"/metrics")
	for k, min := range map[string]float64{
		`tsconnect_control_nodes{state="online"}`:            1,
		"tsconnect_control_map_streams":                      1,
		"tsconnect_control_map_sends_total":                  1,
		"tsconnect_control_map_bytes_total":                  100,
		"tsconnect_control_policy_compile_seconds_count":     1,
		`tsconnect_control_store_seconds_count{op="read"}`:   1,
		`tsconnect_control_store_seconds_count{op="update"}`: 1,
		"go_goroutines": 1, "process_resident_memory_bytes": 1,
	} {
		if m[k] < min {
			t.Errorf("metric %s = %v, want at least %v", k, m[k], min)
		}
	}
	failed := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "tsconnect_control_authentications_total") && strings.Contains(k, `result="failed"`) {
			failed += v
		}
	}
	if failed < 1 {
		t.Errorf("no failed authentication counted after a wrong password: %v", m)
	}
	if !m.Has("tsconnect_control_check_holds") || !m.Has("tsconnect_control_pending_logins") {
		t.Errorf("no check-hold or pending-login gauges: %v", m)
	}

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
