package pgjournal_test

import (
	"fmt"
	"os"
	"testing"
)

// srv is the tests' PostgreSQL server, nil when there is none.
var srv *server

func TestMain(m *testing.M) {
	crash.Child() // returns unless this process is a crash test's child
	var err error
	srv, err = startServer()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgjournal: no PostgreSQL (%v)\n", err)
		if inCI() {
			fmt.Fprintln(os.Stderr, "pgjournal: CI=true: failing")
			os.Exit(1)
		}
	}
	code := m.Run()
	if srv != nil {
		srv.close()
	}
	os.Exit(code)
}

// needServer skips (or, under CI=true, fails) a test without a server.
func needServer(t testing.TB) *server {
	t.Helper()
	if srv == nil {
		if inCI() {
			t.Fatal("no PostgreSQL server under CI=true")
		}
		t.Skip("no PostgreSQL server")
	}
	return srv
}
