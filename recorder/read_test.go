package recorder

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestListFilters: the list answers the recordings of one user, of one machine (the target
// or the source node), started in a date range, a page at a time (limit, next → before),
// and refuses a malformed query naming the parameter.
func TestListFilters(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tr := newTestRecorder(t, "", Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ids := map[string]string{}
	for i, who := range []struct{ name, user, node string }{
		{"a1", "alice@example.com", "laptop"}, {"b1", "bob@example.com", "desk"},
		{"a2", "alice@example.com", "desk"}, {"a3", "alice@example.com", "laptop"},
	} {
		mu.Lock()
		now = time.Date(2026, 12, 1+i, 10, 0, 0, 0, time.UTC)
		mu.Unlock()
		h := strings.Replace(strings.Replace(testHeader, "alice@example.com", who.user, 1), `"laptop"`, `"`+who.node+`"`, 1)
		u, code, msg := tr.startUpload(h)
		if u == nil {
			t.Fatalf("%s: %d %s", who.name, code, msg)
		}
		u.finish(0)
		ids[who.name] = u.ID
	}
	list := func(q string) (int, []string, string) {
		t.Helper()
		code, body := tr.get("/v1/recordings" + q)
		var p ListPage
		json.Unmarshal([]byte(body), &p)
		var names []string
		for _, m := range p.Recordings {
			for n, id := range ids {
				if id == m.ID {
					names = append(names, n)
				}
			}
		}
		if code != 200 {
			var e struct{ Error string }
			json.Unmarshal([]byte(body), &e)
			return code, nil, e.Error
		}
		return code, names, p.Next
	}
	for _, c := range []struct{ q, want string }{
		{"", "a3 a2 b1 a1"},
		{"?user=alice@example.com", "a3 a2 a1"},
		{"?machine=desk", "a2 b1"},
		{"?machine=web-1&user=bob@example.com", "b1"},
		{"?from=2026-12-02T00:00:00Z&to=2026-12-04T00:00:00Z", "a2 b1"},
		{"?user=carol@example.com", ""},
	} {
		if code, got, _ := list(c.q); code != 200 || strings.Join(got, " ") != c.want {
			t.Errorf("%s: %d %v, want %s", c.q, code, got, c.want)
		}
	}
	_, got, next := list("?limit=2")
	if strings.Join(got, " ") != "a3 a2" || next != ids["a2"] {
		t.Fatalf("page 1: %v next %q", got, next)
	}
	_, got, next = list("?limit=2&before=" + next)
	if strings.Join(got, " ") != "b1 a1" || next != "" {
		t.Errorf("page 2: %v next %q", got, next)
	}
	for q, want := range map[string]string{
		"?limit=0":                             "limit must be 1 to 10000",
		"?from=yesterday":                      `from "yesterday" is not an RFC 3339 time`,
		"?user=a&user=b":                       `query parameter "user" given 2 times`,
		"?sort=size":                           `unknown query parameter "sort"`,
		"?before=../x":                         `before "../x" is not a recording ID`,
		"?machine=" + strings.Repeat("m", 300): `query parameter "machine" longer than 256 bytes`,
	} {
		if code, _, body := list(q); code != 400 || !strings.Contains(body, want) {
			t.Errorf("%.40s: %d %s, want 400 %s", q, code, body, want)
		}
	}
}

// TestCastFromOffset: the .cast is served from a byte offset (a player resuming, or one
// reading the rest of a live recording), with the live mark while it is recorded; an
// offset past what is written is refused.
func TestCastFromOffset(t *testing.T) {
	tr := newTestRecorder(t, "", Options{})
	u, _, msg := tr.startUpload(testHeader)
	if u == nil {
		t.Fatal(msg)
	}
	u.event(0, "o", "first")
	resp, err := http.Get(tr.url + "/v1/recordings/" + u.ID + "/cast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get(LiveHeader) != "1" {
		t.Errorf("a recording in progress is not marked live: %v", resp.Header)
	}
	off := len(testHeader) + 1
	resp, err = http.Get(tr.url + "/v1/recordings/" + u.ID + "/cast?follow=1&offset=" + strconv.Itoa(off))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := newLineReader(resp.Body)
	if l := r.next(t); l != `[0, "o", "first"]` {
		t.Fatalf("from offset %d: %s", off, l)
	}
	u.event(1, "o", "second")
	if l := r.next(t); l != `[1, "o", "second"]` {
		t.Fatalf("live line %s", l)
	}
	u.finish(0)
	if rest := r.rest(t); rest != "" {
		t.Errorf("after the end: %q", rest)
	}
	whole, _ := os.ReadFile(filepath.Join(tr.dir, u.ID+".cast"))
	code, body := tr.get("/v1/recordings/" + u.ID + "/cast?offset=" + strconv.Itoa(off))
	if code != 200 || body != string(whole[off:]) {
		t.Errorf("finished, from %d: %d %q", off, code, body)
	}
	if code, body := tr.get("/v1/recordings/" + u.ID + "/cast?offset=" + strconv.Itoa(len(whole)+1)); code != 416 || !strings.Contains(body, "offset must be 0 to "+strconv.Itoa(len(whole))) {
		t.Errorf("past the end: %d %s", code, body)
	}
}
