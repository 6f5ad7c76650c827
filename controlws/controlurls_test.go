package controlws

import (
	"fmt"
	"strings"
	"testing"
)

// TestCheckControlURLs: a node keeps only a bounded list of plain http(s) base URLs.
func TestCheckControlURLs(t *testing.T) {
	many := make([]string, MaxControlURLs+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://c%d.example.com", i)
	}
	for _, tc := range []struct {
		urls []string
		want string // "" means accepted; else a part of the error
	}{
		{nil, ""},
		{[]string{"https://a.example.com", "http://127.0.0.1:8080", "https://b.example.com/prefix"}, ""},
		{many[:MaxControlURLs], ""},
		{many, "over the limit"},
		{[]string{"ftp://a.example.com"}, "not http"},
		{[]string{"https://"}, "no host"},
		{[]string{"https://:443"}, "no host"},
		{[]string{"https://user:pw@a.example.com"}, "user, query or fragment"},
		{[]string{"https://a.example.com/?x=1"}, "user, query or fragment"},
		{[]string{"https://a.example.com/#f"}, "user, query or fragment"},
		{[]string{"https://a.example.com/" + strings.Repeat("x", MaxControlURLLen)}, "over the 512-byte limit"},
		{[]string{"https://a.example.com", "https://a.example.com"}, "listed twice"},
		{[]string{"https://a.example.com\n"}, "control URL"},
	} {
		err := CheckControlURLs(tc.urls)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckControlURLs(%.80q): %v; want it accepted", tc.urls, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckControlURLs(%.80q) = %v; want an error with %q", tc.urls, err, tc.want)
		}
	}
}
