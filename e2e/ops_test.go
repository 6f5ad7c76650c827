package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"tsconnect/control"
	"tsconnect/internal/eventually"
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
	cli(t, "users", "create", "--state", dir, "ops@example.com")
	cliOwnNodesPolicy(t, dir)
	key := lastLine(cli(t, "keys", "create", "--state", dir, "--user", "ops@example.com"))
	startNodeAt(t, url, key, "laptop")
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

// TestAgentMetrics: the agent's collector counts its logged-in SSH connections and sessions,
// its home relay's state and traffic, and the logins a policy change cuts; `tsconnect up
// --metrics-listen` serves the same over HTTP in the Prometheus text format.
func TestAgentMetrics(t *testing.T) {
	tn := newTestNet(t)
	a := tn.startAgent("server")
	laptop := tn.startNode("laptop")
	cl := sshDial(t, laptop, "server")
	sess, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the agent's metrics to count the session", func() bool {
		m := metricstest.Of(t, a.Collector())
		return m["tsconnect_agent_ssh_connections"] == 1 && m["tsconnect_agent_ssh_sessions"] == 1
	})
	m := metricstest.Of(t, a.Collector())
	if m["tsconnect_agent_relay_home_up"] != 1 || m["tsconnect_agent_relay_home_region"] < 1 ||
		m[`tsconnect_agent_relay_packets_total{direction="received"}`] < 1 || m["tsconnect_agent_map_age_seconds"] > 1 {
		t.Errorf("relay and map metrics: %v", m)
	}
	// A policy that allows no SSH cuts the login: one revocation.
	if _, err := tn.srv.SetPolicy(context.Background(), []byte(`{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}`), "test"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the revocation counted and the session gone", func() bool {
		m := metricstest.Of(t, a.Collector())
		return m["tsconnect_agent_ssh_revocations_total"] == 1 && m["tsconnect_agent_ssh_sessions"] == 0
	})

	// The same through `tsconnect up --metrics-listen`.
	maddr, adir := freePort(t), t.TempDir()
	key := tn.authKey(control.AuthKeyOptions{})
	startProc(t, "--socket", filepath.Join(adir, "agent.sock"), "up", "--ssh", "--hostname", "metered", "--login-server", tn.url,
		"--auth-key", key, "--state", adir, "--metrics-listen", maddr)
	eventually.True(t, "up's metrics listener to show its relay up", func() bool {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return metricstest.Scrape(t, "http://"+maddr+"/metrics")["tsconnect_agent_relay_home_up"] == 1
	})
}
