package wsconn

import "strings"

// wsURL turns an http(s) URL into the ws(s) URL of the same place; other URLs pass unchanged.
func wsURL(u string) string {
	switch {
	case strings.HasPrefix(u, "http://"):
		return "ws://" + u[len("http://"):]
	case strings.HasPrefix(u, "https://"):
		return "wss://" + u[len("https://"):]
	}
	return u
}
