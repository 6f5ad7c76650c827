package main

import (
	"sync"
	"testing"
)

// The demo's #token opens one session: of 32 pages racing with the same token exactly one
// gets a key; the others, and any later reload, are told it was used; the fresh token that
// replaced it opens one more session; a made-up token is wrong, not "used".
func TestDemoTokenReplayOpensNoSecondSession(t *testing.T) {
	d := newDemoTokens()
	tok := d.current()
	var mu sync.Mutex
	counts := map[tokenVerdict]int{}
	var next string
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, n := d.take(tok)
			mu.Lock()
			counts[v]++
			if v == tokenOK {
				next = n
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[tokenOK] != 1 || counts[tokenUsed] != 31 {
		t.Fatalf("32 racing uses of one token: %d got a session, %d were told it was used; want 1 and 31", counts[tokenOK], counts[tokenUsed])
	}
	if v, _ := d.take(tok); v != tokenUsed {
		t.Errorf("a reload with the used token: verdict %d, want tokenUsed", v)
	}
	if next == "" || next == tok || d.current() != next {
		t.Fatalf("the replacement token %q (current %q) is not fresh", next, d.current())
	}
	if v, _ := d.take(next); v != tokenOK {
		t.Errorf("the fresh token: verdict %d, want tokenOK", v)
	}
	if v, _ := d.take(next); v != tokenUsed {
		t.Errorf("the fresh token twice: verdict %d, want tokenUsed", v)
	}
	for _, bad := range []string{"", "nope", tok + "x"} {
		if v, _ := d.take(bad); v != tokenWrong {
			t.Errorf("token %q: verdict %d, want tokenWrong", bad, v)
		}
	}
}
