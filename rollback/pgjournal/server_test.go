package pgjournal_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests run against a throwaway PostgreSQL cluster: initdb into a
// temporary directory, then pg_ctl start on a free loopback port, stopped
// (and removed) when the tests end. PostgreSQL refuses to run as root:
// when the tests run as root, initdb, postgres and pg_ctl run as the
// "postgres" system user (the Debian package creates it) through runuser,
// and the data directory is handed to that user. Under CI=true a missing
// PostgreSQL fails the tests; otherwise they are skipped.
//
// BULWARK_PG_BIN names the directory of initdb and pg_ctl; by default the
// newest /usr/lib/postgresql/*/bin, else the PATH.

type server struct {
	bin, dir, sock string
	port           int
	asUser         string // run the binaries as this user ("": as ourselves)
}

func (s *server) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// command returns name from the server's bin directory, as its user.
func (s *server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if s.bin == "" {
		path = name
	}
	if s.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func findBin() (string, error) {
	if d := os.Getenv("BULWARK_PG_BIN"); d != "" {
		return d, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return filepath.Dir(m[len(m)-1]), nil
	}
	if _, err := exec.LookPath("initdb"); err == nil {
		return "", nil
	}
	return "", errors.New("initdb not found (install the postgresql package, or set BULWARK_PG_BIN)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer creates and starts a throwaway cluster.
func startServer() (*server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bulwark-pgjournal-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: filepath.Join(dir, "data"), sock: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		s.asUser = "postgres"
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	if out, err := s.command("initdb", "-D", s.dir, "-U", "postgres", "-A", "trust", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", s.port, s.sock)
	if out, err := s.command("pg_ctl", "-D", s.dir, "-o", opts, "-l", filepath.Join(s.sock, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return nil
}

func (s *server) stop() error {
	if out, err := s.command("pg_ctl", "-D", s.dir, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// close stops the server and removes its files.
func (s *server) close() {
	if err := s.stop(); err != nil {
		// Last resort: the postmaster's pid is the first line of its pid file.
		if b, rerr := os.ReadFile(filepath.Join(s.dir, "postmaster.pid")); rerr == nil {
			var pid int
			if _, serr := fmt.Sscan(string(b), &pid); serr == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_ = os.RemoveAll(s.sock)
}

func inCI() bool { return os.Getenv("CI") == "true" }

// newPool connects to the server and creates the tables.
func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgxpool.New(ctx, url)
}
