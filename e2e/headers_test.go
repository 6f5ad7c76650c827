package e2e

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"tsconnect/console"
)

// TestEveryPageCannotBeFramed: the demo page at /, the terminal page, the console, the
// demo's key endpoint and a 404 all carry the console's Content-Security-Policy (with
// frame-ancestors 'none', so no other site can frame them and click-jack a shell), nosniff
// and the referrer policy — under `tsconnect control` and under `tsconnect demo`.
func TestEveryPageCannotBeFramed(t *testing.T) {
	addr := freePort(t)
	startProc(t, "control", "--listen", addr, "--state", t.TempDir())
	waitHTTP(t, "http://"+addr+"/")

	demo := startProc(t, "demo", "--listen", "127.0.0.1:0", "--state", t.TempDir())
	urlLine := regexp.MustCompile(`(?m)^URL: (http://[^/\s]+)/#token=`)
	var demoBase string
	for deadline := time.Now().Add(60 * time.Second); demoBase == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tsconnect demo printed no URL:\n%s", demo.out)
		}
		if m := urlLine.FindStringSubmatch(demo.out.String()); m != nil {
			demoBase = m[1]
		}
	}

	check := func(method, url string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if got := h.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
			t.Errorf("%s %s (%s): Content-Security-Policy %q, want the console's %q", method, url, resp.Status, got, console.ContentSecurityPolicy)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s %s: X-Content-Type-Options %q, Referrer-Policy %q", method, url, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
	for _, base := range []string{"http://" + addr, demoBase} {
		for _, p := range []string{"/", "/admin/term.html", "/admin/", "/no-such-page", "/key"} {
			check("GET", base+p)
		}
	}
	check("POST", demoBase+"/api/demo/session") // refused (no token), still with the headers
}
