package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/harkhq/hark/engine/badgerstore"
	"github.com/harkhq/hark/server/backupfile"
)

// BackupPath is where a running server streams a backup to admin-token
// holders, in the format of package backupfile.
const BackupPath = "/admin/backup"

// ErrDataDirInUse is returned by Backup and Restore when a hark serve holds
// the data dir; back up a running server through BackupPath instead.
var ErrDataDirInUse = errors.New("the data dir is in use by a running hark serve")

// ErrNoDatabase is returned by Backup for a data dir without a database: a
// wrong --data-dir should not quietly give an empty backup.
var ErrNoDatabase = errors.New("no hark database in the data dir")

// dbDir is the Badger directory inside a data dir.
func dbDir(dataDir string) string { return filepath.Join(dataDir, "db") }

// Backup writes a backup of a data dir that no server holds to w, framed
// (package backupfile) so that restoring it checks that it is whole. When Backup
// fails, what it wrote lacks the trailer and is refused by Restore.
func Backup(dataDir string, w io.Writer, log *slog.Logger) error {
	if _, err := os.Stat(dbDir(dataDir)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w %s (is --data-dir right?)", ErrNoDatabase, dataDir)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return errors.Join(ErrDataDirInUse, err)
	}
	defer lock.release()
	store, err := badgerstore.Open(badgerstore.Options{Dir: dbDir(dataDir), Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	return writeBackup(store, w)
}

// writeBackup writes store's backup stream to w inside the framing.
func writeBackup(store *badgerstore.Store, w io.Writer) error {
	fw, err := backupfile.NewWriter(w)
	if err != nil {
		return err
	}
	if err := store.Backup(fw); err != nil {
		return fmt.Errorf("back up the store: %w", err)
	}
	return fw.Close()
}

// Restore loads a backup into a new data dir: sources, triggers, users, the
// idempotency ledger, events and runs. The admin token is not part of a
// backup; the restored server uses HARK_ADMIN_TOKEN or generates one.
//
// The backup is verified whole (header, length, SHA-256) before anything is
// written into dataDir, and verified again while it loads. An r that cannot
// seek (a pipe) is copied to a temporary file beside dataDir for that, and
// the file is removed afterwards. When Restore fails, dataDir is left as it
// was: removed if Restore created it, else without the database it began.
func Restore(dataDir string, r io.Reader, log *slog.Logger) (err error) {
	db := dbDir(dataDir)
	if entries, err := os.ReadDir(db); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty; restore into a new data dir", db)
	}
	src, closeSrc, err := verified(r, filepath.Dir(filepath.Clean(dataDir)))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer closeSrc()

	// What a failed restore removes again is decided before the lock
	// creates anything; the lock keeps any other hark out meanwhile.
	_, statErr := os.Stat(dataDir)
	createdDir := errors.Is(statErr, fs.ErrNotExist)
	lockPath := filepath.Join(dataDir, lockFile)
	_, statErr = os.Stat(lockPath)
	createdLock := errors.Is(statErr, fs.ErrNotExist)
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return errors.Join(ErrDataDirInUse, err)
	}
	if entries, err := os.ReadDir(db); err == nil && len(entries) > 0 {
		lock.release()
		return fmt.Errorf("restore: %s is not empty; restore into a new data dir", db)
	}
	defer func() {
		switch {
		case err == nil:
		case createdDir:
			os.RemoveAll(dataDir)
		default:
			os.RemoveAll(db)
			if createdLock {
				os.Remove(lockPath)
			}
		}
		lock.release()
	}()
	fr, err := backupfile.NewReader(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := load(db, fr, log); err != nil {
		return fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	// Badger reads to the end, where the Reader checks the trailer again;
	// this makes sure of it, should a future Badger stop early.
	if _, err := io.Copy(io.Discard, fr); err != nil {
		return fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	return nil
}

// verified checks that r holds a whole backup and returns a reader of it
// from its start. A seekable r is read twice; any other is copied to a
// temporary file in spoolDir (or the system's temporary directory when
// spoolDir does not exist) as it is checked. closeSrc removes that file.
func verified(r io.Reader, spoolDir string) (src io.Reader, closeSrc func(), err error) {
	if s, ok := r.(io.ReadSeeker); ok {
		if start, err := s.Seek(0, io.SeekCurrent); err == nil {
			if err := backupfile.Verify(s); err != nil {
				return nil, nil, err
			}
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, nil, fmt.Errorf("rewind the backup: %w", err)
			}
			return s, func() {}, nil
		}
	}
	if _, err := os.Stat(spoolDir); err != nil {
		spoolDir = ""
	}
	f, err := os.CreateTemp(spoolDir, ".hark-restore-*")
	if err != nil {
		return nil, nil, fmt.Errorf("create a temporary file to check the backup in: %w", err)
	}
	remove := func() {
		f.Close()
		os.Remove(f.Name())
	}
	if err := backupfile.Verify(io.TeeReader(r, f)); err != nil {
		remove()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		remove()
		return nil, nil, fmt.Errorf("rewind the temporary copy of the backup: %w", err)
	}
	return f, remove, nil
}

// load runs Badger's Load of the body. Badger panics on some malformed
// streams (a length it cannot allocate); the checksum keeps those out, and
// the recover keeps a crafted one from crashing hark.
func load(db string, body io.Reader, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("load the backup: Badger refused its content: %v", p)
		}
	}()
	return badgerstore.Restore(db, body, log)
}

// backupHandler streams an online backup of the running server's store.
func (s *Server) backupHandler(auth authInterceptor) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth.check(r.Header.Get("Authorization")); err != nil {
			http.Error(w, "missing or wrong admin token: send 'Authorization: Bearer <token>'", http.StatusUnauthorized)
			return
		}
		if s.badger == nil {
			http.Error(w, "this server keeps its state on NATS JetStream: back up the stream with the NATS tools (nats stream backup), not through hark", http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="hark.backup"`)
		if err := writeBackup(s.badger, w); err != nil {
			// Headers are gone; the client sees the stream end without
			// its trailer and refuses it.
			s.log.Error("backup", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
}
