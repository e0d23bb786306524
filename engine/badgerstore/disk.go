package badgerstore

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/harkhq/hark/engine"
)

// Disk space. Badger writes its files through memory maps of sparse files
// (a value-log file is mapped at twice ValueLogFileSize, each memtable's
// log at twice MemTableSize), so a full disk is not an error Badger can
// return: the kernel kills the process with SIGBUS when a page cannot be
// backed, and a restart that replays the logs dies the same way. The store
// refuses writes instead while free space is below MinFreeBytes, which
// covers what Badger may still write without being asked: the rest of the
// current value-log file, a memtable and its flush, and a compaction.
//
// When Open finds too little space it opens Badger read-only, so hark
// starts and serves reads rather than crash-loop, and reopens it for
// writes once the space is there again.

// DefaultMinFreeBytes is MinFreeBytes for the sizes Open gives Badger: one
// value-log file (64 MiB), three memtables' worth of level-zero tables
// (3 × 16 MiB) and 80 MiB for a compaction, which rewrites those tables
// and the level-one tables they overlap before it deletes them: 192 MiB.
const DefaultMinFreeBytes = 64<<20 + 3*16<<20 + 80<<20

// statfsInterval is how often the guard asks the kernel: a statfs is cheap,
// but commits come by the thousand a second.
const statfsInterval = 100 * time.Millisecond

// diskGuard knows the free space of the store's file system.
type diskGuard struct {
	dir string
	min int64

	mu      sync.Mutex
	checked time.Time
	free    int64
	err     error
}

// state returns the free bytes and whether they are below the minimum,
// asking the kernel at most every statfsInterval.
func (g *diskGuard) state() (free int64, low bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.checked) >= statfsInterval {
		g.checked = now
		var st syscall.Statfs_t
		if g.err = syscall.Statfs(g.dir, &st); g.err == nil {
			g.free = int64(st.Bavail) * int64(st.Bsize)
		}
	}
	return g.free, g.err == nil && g.free < g.min, g.err
}

// errDiskLow refuses a write: answered 503 with this message, so senders
// retry once an operator made room.
func errDiskLow(free, min int64) error {
	return &engine.NotReadyError{Message: fmt.Sprintf(
		"hark is refusing writes: %d MiB free on its data disk, below the %d MiB it keeps free; retry later", free>>20, min>>20)}
}

// errReadOnly refuses a write while the store is open read-only.
var errReadOnly = &engine.NotReadyError{Message: "hark started read-only because its data disk was short of space; retry later"}

// DiskState is what the store knows of its disk, for health and metrics.
type DiskState struct {
	// Free is the space available on the data dir's file system.
	Free int64
	// Low is true while Free is below the minimum: writes are refused.
	Low bool
	// ReadOnly is true while Badger is open read-only (Open found the disk
	// short); it is reopened for writes once space is back.
	ReadOnly bool
}

// Disk returns the store's disk state.
func (s *Store) Disk() DiskState {
	free, low, _ := s.guard.state()
	return DiskState{Free: free, Low: low, ReadOnly: s.readOnly.Load()}
}

// reopenLoop reopens a read-only store for writes once the disk has the
// space, until Close.
func (s *Store) reopenLoop() {
	defer s.wg.Done()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		if _, low, err := s.guard.state(); err != nil || low {
			continue
		}
		if err := s.reopen(); err != nil {
			s.log.Error("reopen the store for writes", "err", err)
			continue
		}
		s.log.Info("disk space is back: the store accepts writes again")
		return
	}
}

// reopen swaps the read-only Badger for a read-write one, waiting for
// transactions under way.
func (s *Store) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close the read-only store: %w", err)
	}
	db, err := openBadger(s.opts, false)
	if err != nil {
		// Back to reading at least.
		if ro, rerr := openBadger(s.opts, true); rerr == nil {
			s.db = ro
		}
		return err
	}
	s.db = db
	if err := s.migrate(); err != nil {
		return err
	}
	s.readOnly.Store(false)
	return nil
}
