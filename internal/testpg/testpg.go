// Package testpg starts a real PostgreSQL server for tests: Debian's initdb and pg_ctl in a
// temporary directory, run as an unprivileged user, listening on 127.0.0.1 only.
package testpg

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv names the variable that turns a missing PostgreSQL into a failure instead of
// a skip (CI sets it, so CI never skips).
const RequireEnv = "TSCONNECT_REQUIRE_POSTGRES"

// Server is one running PostgreSQL server, stopped when the test that started it ends.
type Server struct {
	// Addr is the server's 127.0.0.1:port.
	Addr string
	n    atomic.Int64
}

// BinDir returns the bin directory of the newest PostgreSQL under /usr/lib/postgresql, or
// "" when none is installed.
func BinDir() string {
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(ms, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(ms[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(ms[j]))))
		return vi < vj
	})
	if len(ms) == 0 {
		return ""
	}
	return filepath.Dir(ms[len(ms)-1])
}

// Start initializes and starts a server in a fresh directory, stopping it and removing the
// directory at the end of t. It skips t when PostgreSQL is not installed, unless RequireEnv
// is set.
func Start(t testing.TB) *Server {
	t.Helper()
	if BinDir() == "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("testpg: no PostgreSQL under /usr/lib/postgresql, and %s is set (apt-get install postgresql)", RequireEnv)
		}
		t.Skip("testpg: PostgreSQL is not installed (apt-get install postgresql)")
	}
	s, stop, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Launch initializes and starts a server in a fresh temporary directory, for programs that
// are not tests (e2e/tools/pgserver); stop stops it and removes the directory.
func Launch() (s *Server, stop func() error, err error) {
	bin := BinDir()
	if bin == "" {
		return nil, nil, fmt.Errorf("testpg: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
	}
	cred, err := unprivileged()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return nil, nil, err
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			return fmt.Errorf("testpg: %s %v: %v\n%s\n%s", name, args, err, out.Bytes(), log)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	opts := "-c listen_addresses=127.0.0.1 -p " + port + " -k " + dir + " -c fsync=off -c max_connections=200"
	if _, err := os.Stat(filepath.Join(bin, "..", "lib", "pg_stat_statements.so")); err == nil {
		opts += " -c shared_preload_libraries=pg_stat_statements" // for Statements
	}
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return nil, nil, err
	}
	stop = func() error {
		defer os.RemoveAll(dir)
		return run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
	}
	return &Server{Addr: "127.0.0.1:" + port}, stop, nil
}

// unprivileged returns the credential of the postgres user the Debian package creates, or
// of nobody: PostgreSQL refuses to run as root.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return nil, fmt.Errorf("testpg: no postgres or nobody user to run the server as")
}

// TopStatements returns pg_stat_statements' n most called statements in database url since
// the last reset (Statements resets), one a line: calls, total and mean milliseconds, the
// query's first 90 characters. It resets nothing.
func (s *Server) TopStatements(url string, n int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("testpg: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return "", fmt.Errorf("testpg: pg_stat_statements: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT calls, total_exec_time, mean_exec_time, left(regexp_replace(query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY calls DESC LIMIT $1`, n)
	if err != nil {
		return "", fmt.Errorf("testpg: top statements: %v", err)
	}
	defer rows.Close()
	var b bytes.Buffer
	for rows.Next() {
		var calls int64
		var total, mean float64
		var q string
		if err := rows.Scan(&calls, &total, &mean, &q); err != nil {
			return "", fmt.Errorf("testpg: top statements: %v", err)
		}
		fmt.Fprintf(&b, "%8d calls %9.1f ms %7.3f ms/call  %s\n", calls, total, mean, q)
	}
	return b.String(), rows.Err()
}

// URL returns the connection URL of database db on s.
func (s *Server) URL(db string) string {
	return "postgres://postgres@" + s.Addr + "/" + db + "?sslmode=disable"
}

// NewDatabase creates an empty database on s and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := s.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// CreateDatabase creates an empty database on s and returns its URL.
func (s *Server) CreateDatabase() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("testpg: connect: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t%d", s.n.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("testpg: create database: %v", err)
	}
	return s.URL(name), nil
}

// Statements returns how many statements the server ran in the database of url since the
// last call (or since it started), counted by pg_stat_statements, which Launch loads when the
// PostgreSQL installed has it: the round trips a piece of work costs, a figure the machine's
// load does not change.
func (s *Server) Statements(url string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("testpg: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return 0, fmt.Errorf("testpg: pg_stat_statements: %v", err)
	}
	var n int64
	err = conn.QueryRow(ctx, `SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("testpg: counting statements: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		return 0, fmt.Errorf("testpg: resetting pg_stat_statements: %v", err)
	}
	return n, nil
}
