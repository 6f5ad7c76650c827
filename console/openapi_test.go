package console

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tsconnect/console/api"
)

// TestOpenAPIListsEveryRoute: docs/openapi.json lists exactly the routes the API's muxes
// register (method and path, both directions), so the document cannot drift from the code.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Servers []struct{ URL string }                `json:"servers"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != api.Prefix {
		t.Fatalf("openapi %q servers %+v; want OpenAPI 3 served at %s", doc.OpenAPI, doc.Servers, api.Prefix)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if m := strings.ToUpper(method); slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}, m) {
				documented = append(documented, m+" "+path)
			}
		}
	}

	e := newEnv(t)
	var served []string
	for _, rt := range e.con.routes() {
		served = append(served, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("docs/openapi.json lists %s, which no route serves", r)
		}
	}

	// And each is what the muxes (HTTP and admin socket) route to, not the catch-all.
	param := regexp.MustCompile(`\{[a-z]+\}`)
	for _, r := range documented {
		method, path, _ := strings.Cut(r, " ")
		req, _ := http.NewRequest(method, "http://x"+api.Prefix+param.ReplaceAllString(path, "1"), nil)
		for name, m := range map[string]*http.ServeMux{"HTTP": e.con.mux, "socket": e.con.sock} {
			if _, pattern := m.Handler(req); pattern != method+" "+api.Prefix+path {
				t.Errorf("%s mux routes %s %s to %q", name, method, req.URL.Path, pattern)
			}
		}
	}
}
