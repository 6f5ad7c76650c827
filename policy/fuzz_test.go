package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser. It must never panic; it
// either refuses with positioned errors or yields a policy that compiles and
// answers SSH questions for every node of the test network.
func FuzzParse(f *testing.F) {
	f.Add([]byte(DefaultText))
	for _, src := range conformancePolicies {
		f.Add([]byte(src))
	}
	for _, c := range invalidPolicies {
		f.Add([]byte(c.src))
	}
	files, _ := filepath.Glob("testdata/*.hujson")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.hujson", src)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not an ErrorList: %v", err)
			}
			for _, e := range list {
				if e.Line < 0 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("malformed error %+v", e)
				}
			}
			return
		}
		for _, dst := range testNetwork.Nodes {
			r := p.Compile(testNetwork, dst)
			for _, src := range testNetwork.Nodes {
				a := r.SSHVerdict(src.Addresses[0].Addr(), "root", nil)
				b := p.SSHAccess(src, dst, "root", nil)
				if a.Action != b.Action || a.Reason != b.Reason {
					t.Fatalf("%s -> %s: compiled %+v, direct %+v", src.Name, dst.Name, a, b)
				}
			}
		}
	})
}
