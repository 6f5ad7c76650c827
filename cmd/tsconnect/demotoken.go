package main

import (
	"crypto/subtle"
	"sync"
)

// maxUsedDemoTokens bounds how many used tokens the demo remembers to tell a reload
// "already used" rather than "wrong token".
const maxUsedDemoTokens = 64

// demoTokens holds the demo page's single-use token: one token opens one session; taking
// it puts a fresh one in its place, which the demo prints as a new URL.
type demoTokens struct {
	mu   sync.Mutex
	cur  string
	used []string // oldest first, at most maxUsedDemoTokens
}

// tokenVerdict is what take says of a token a page presented.
type tokenVerdict int

const (
	tokenOK    tokenVerdict = iota // the current token: taken, a fresh one in its place
	tokenUsed                      // a token that already opened a session
	tokenWrong                     // not a token of this demo
)

func newDemoTokens() *demoTokens { return &demoTokens{cur: randomHex(16)} }

// current is the token a fresh URL carries.
func (d *demoTokens) current() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// take consumes got if it is the current token (then next is its replacement), under one
// lock: of concurrent requests with the same token exactly one gets tokenOK.
func (d *demoTokens) take(got string) (v tokenVerdict, next string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(got), []byte(d.cur)) == 1 {
		d.used = append(d.used, d.cur)
		if len(d.used) > maxUsedDemoTokens {
			d.used = d.used[1:]
		}
		d.cur = randomHex(16)
		return tokenOK, d.cur
	}
	for _, u := range d.used {
		if subtle.ConstantTimeCompare([]byte(got), []byte(u)) == 1 {
			return tokenUsed, ""
		}
	}
	return tokenWrong, ""
}
