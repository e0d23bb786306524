package natsembed

import (
	"context"
)

// TB is the part of testing.TB that StartTest uses. Taking it instead of testing.TB keeps the
// testing package out of binaries that import natsembed for `hark dev cluster`.
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// StartTest starts an n-server cluster (n = 0 means DefaultServers) on free loopback ports with
// its store under t.TempDir(), and closes it when the test ends. It fails the test if the cluster
// does not become ready.
func StartTest(t TB, n int) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), Config{Dir: t.TempDir(), Servers: n})
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(c.Close)
	return c
}
