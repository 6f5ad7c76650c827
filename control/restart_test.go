package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"

	"tsconnect/controlws"
	"tsconnect/internal/leakcheck"
	"tsconnect/key"
)

func TestRestartKeepsState(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.user("olga@example.com")
	single := e.authKey(AuthKeyOptions{User: u.ID})
	reusable := e.authKey(AuthKeyOptions{User: u.ID, Reusable: true})
	m, n1 := e.mustRegister(single, "one")
	_, n2 := e.mustRegister(reusable, "two")
	pub, ula := e.s.PublicKey(), e.s.ula
	before := e.nodes()

	e.restart()
	if e.s.PublicKey() != pub || e.s.ula != ula {
		t.Fatalf("server key or ULA changed across restart")
	}
	after := e.nodes()
	if len(after) != len(before) {
		t.Fatalf("nodes before %d, after %d", len(before), len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.Name != b.Name || a.Key != b.Key || !slices.Equal(a.Addresses, b.Addresses) {
			t.Fatalf("node changed across restart:\n%+v\n%+v", b, a)
		}
	}
	// The client reconnects, pinning the key it had.
	c, err := controlws.Dial(ctx, controlws.DialOptions{ServerURL: e.hs.URL, ServerKey: pub, MachineKey: m.mk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Register(ctx, controlws.RegisterRequest{NodeKey: m.nk.Public()})
	if err != nil || r.Node.ID != n1.ID {
		t.Fatalf("re-register after restart: %v %+v", err, r)
	}
	// The single-use key stays used; the reusable one still works; addresses keep advancing,
	// from the block the restarted server reserves after the one it had.
	_, err = e.newMachine().register(single, "x")
	wantCode(t, err, controlws.CodeUsedKey)
	_, n3 := e.mustRegister(reusable, "three")
	if n3.Addresses[0].Addr() != ipv4At(addrBlockSize+1) || n3.ID <= n2.ID {
		t.Fatalf("after restart: node %d at %v", n3.ID, n3.Addresses[0])
	}
	users, _ := e.s.Users(ctx)
	if len(users) != 1 || users[0].Email != "olga@example.com" {
		t.Fatalf("users after restart: %+v", users)
	}
}

// crashChild runs the test named child in a child process with env=dir set, reads its
// stdout lines until it prints "done", SIGKILLs it and returns the lines before "done".
func crashChild(t *testing.T, child, env, dir string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "done" {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return lines
}

// TestKill9 registers nodes in a child process, kills it with SIGKILL right after the
// registrations returned, and checks that every committed node and key is in the database.
func TestKill9(t *testing.T) {
	if os.Getenv("CONTROL_KILL9_CHILD") != "" {
		t.Skip("in the child")
	}
	leakcheck.Check(t)
	dir := t.TempDir()
	// The child prints one JSON line per committed registration, then "done".
	var committed []controlws.Node
	for _, line := range crashChild(t, "TestKill9Child", "CONTROL_KILL9_CHILD", dir) {
		var n controlws.Node
		if json.Unmarshal([]byte(line), &n) == nil && n.ID != 0 {
			committed = append(committed, n)
		}
	}
	if len(committed) != 20 {
		t.Fatalf("child reported %d registrations, want 20", len(committed))
	}
	s, err := New(Config{StateDir: dir, ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nodes, err := s.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]controlws.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	for _, c := range committed {
		n, ok := byID[c.ID]
		if !ok || n.Key != c.Key || !slices.Equal(n.Addresses, c.Addresses) {
			t.Fatalf("committed node %d (%s) lost or changed after kill -9: %+v", c.ID, c.Name, n)
		}
	}
	keys, _ := s.AuthKeys(context.Background())
	if len(keys) != 21 {
		t.Fatalf("%d auth keys after kill -9, want 21", len(keys))
	}
}

// TestKill9Child is the child of TestKill9; it does nothing in a normal run.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv("CONTROL_KILL9_CHILD")
	if dir == "" {
		t.Skip("only run as TestKill9's child")
	}
	s, err := New(Config{StateDir: dir, ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "pat@example.com", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		secret, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.register(ctx, key.NewPrivate().Public(), &controlws.RegisterRequest{AuthKey: secret,
			NodeKey: key.NewPrivate().Public(), Hostinfo: controlws.Hostinfo{Hostname: fmt.Sprint("k", i)}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r.Node)
		fmt.Printf("%s\n", b)
	}
	// One more key, then report and wait to be killed, store open.
	if _, _, err := s.CreateAuthKey(ctx, AuthKeyOptions{User: u.ID, Reusable: true}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
	select {}
}
