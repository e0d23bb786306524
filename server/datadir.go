package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFile is held (flock) by the hark serve that owns a data dir.
const lockFile = "hark.lock"

// dataDirLock is an exclusive lock on a data dir.
type dataDirLock struct{ f *os.File }

// lockDataDir creates dataDir (0700: it holds the admin token and every
// secret) and takes its lock, or says which process holds it. Badger locks its
// own directory too, but its error speaks of Badger, not of hark.
func lockDataDir(dataDir string) (*dataDirLock, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dataDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flockRetry(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("data dir %s is in use by another hark serve (pid %s); stop it or use another --data-dir", dataDir, pid)
		}
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// release unlocks the data dir.
func (l *dataDirLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// lockWait is how long lockDataDir retries a held lock. A process that just
// released the data dir may still share the lock for a moment through a
// child between fork and exec (plugins are started that way), so a restart
// in the same process must not fail on that window; a real second hark serve
// still fails after it.
const lockWait = 2 * time.Second

func flockRetry(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
