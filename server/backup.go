package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/harkhq/hark/engine/badgerstore"
)

// BackupPath is where a running server streams a backup to admin-token
// holders.
const BackupPath = "/admin/backup"

// ErrDataDirInUse is returned by Backup and Restore when a hark serve holds
// the data dir; back up a running server through BackupPath instead.
var ErrDataDirInUse = errors.New("the data dir is in use by a running hark serve")

// dbDir is the Badger directory inside a data dir.
func dbDir(dataDir string) string { return filepath.Join(dataDir, "db") }

// Backup writes a backup of a data dir that no server holds.
func Backup(dataDir string, w io.Writer, log *slog.Logger) error {
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
	return store.Backup(w)
}

// Restore loads a backup into a new data dir: sources, triggers, users, the
// idempotency ledger, events and runs. The admin token is not part of a
// backup; the restored server uses HARK_ADMIN_TOKEN or generates one.
func Restore(dataDir string, r io.Reader, log *slog.Logger) error {
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return errors.Join(ErrDataDirInUse, err)
	}
	defer lock.release()
	if err := badgerstore.Restore(dbDir(dataDir), r, log); err != nil {
		return fmt.Errorf("restore into %s: %w", dataDir, err)
	}
	return nil
}

// backupHandler streams an online backup of the running server's store.
func (s *Server) backupHandler(auth authInterceptor) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth.check(r.Header.Get("Authorization")); err != nil {
			http.Error(w, "missing or wrong admin token: send 'Authorization: Bearer <token>'", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="hark.backup"`)
		if err := s.store.Backup(w); err != nil {
			// Headers are gone; the client sees a truncated stream, and
			// Badger's Load refuses a truncated backup.
			s.log.Error("backup", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
}
