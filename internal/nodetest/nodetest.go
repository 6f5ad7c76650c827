// Package nodetest joins in-memory nodes to a test's control server.
// A node joined here closes when the test ends.
package nodetest

import (
	"context"
	"testing"
	"time"

	"tsconnect/node"
)

// Join starts an in-memory node (like the browser's) named name at the control at url,
// registered with key, logging through t with the name as prefix; it fails t if the node
// does not join within 20 s.
func Join(t testing.TB, url, key, name string) *node.Node {
	t.Helper()
	n, err := node.New(node.Options{ControlURL: url, AuthKey: key, Hostname: name,
		Logf: func(f string, a ...any) { t.Logf(name+": "+f, a...) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
