package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/harkhq/hark/server"
	"github.com/harkhq/hark/server/backupfile"
)

// newBackupCommand writes a backup of a data dir: directly when no server
// holds it, else online, streamed by the running server (which must be
// --server; its token comes from the usual places).
func newBackupCommand(g *globalOptions) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup [-f FILE]",
		Short: "Write a backup of hark's database (online when hark serve is running)",
		Long: `Write a backup of the database in --data-dir: sources, triggers, users, the
idempotency ledger, events and workflow runs (Badger's backup stream, framed
with an end marker and a SHA-256 so that hark restore can tell a whole backup
from a damaged one). When a hark serve holds the data dir, the backup is
taken online through that server (--server, with the admin token).

The file appears only when the backup is complete and checked: it is
written to a temporary file beside it, synced and renamed, and an existing
file is replaced only then. Restore it with 'hark restore'.`,
		Example: `  hark backup -f hark.backup
  hark backup -f - | gzip > hark.backup.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			if out == "" || out == "-" {
				w := cmd.OutOrStdout()
				if isTerminal(w) {
					return usageError{errors.New("refusing to write the binary backup to a terminal"),
						"give -f FILE, or redirect standard output: hark backup > hark.backup"}
				}
				return backupTo(ctx, g, w)
			}
			if err := writeFileAtomic(out, func(w io.Writer) error { return backupTo(ctx, g, w) }); err != nil {
				return err
			}
			if st, err := os.Stat(out); err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", out, st.Size())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "file", "f", "-", "where to write the backup (- is standard output)")
	return cmd
}

// backupTo writes the backup of g's data dir to w: offline when no server
// holds the data dir, else online from the server that does.
func backupTo(ctx context.Context, g *globalOptions, w io.Writer) error {
	err := server.Backup(g.dataDir, w, slog.New(slog.DiscardHandler))
	if !errors.Is(err, server.ErrDataDirInUse) {
		return err
	}
	return onlineBackup(ctx, g, w)
}

// onlineBackup streams the backup from the running server into w and checks
// it as it goes: a stream that ends before its trailer, or does not match
// its checksum, is an error, so writeFileAtomic never renames it into place.
func onlineBackup(ctx context.Context, g *globalOptions, w io.Writer) error {
	base, err := serverURL(g.server)
	if err != nil {
		return err
	}
	token, src := g.resolveToken(base)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+server.BackupPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &hintError{fmt.Errorf("the data dir is in use and the server at %s cannot be reached for an online backup: %w", base, err),
			"point --server (HARK_SERVER) at the hark serve that holds --data-dir"}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return &hintError{fmt.Errorf("online backup from %s: %s", base, resp.Status), src}
	case resp.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("online backup from %s: %s: %s", base, resp.Status, msg)
	}
	if err := backupfile.Verify(io.TeeReader(resp.Body, w)); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("online backup from %s: stopped: %w", base, ctx.Err())
		}
		return fmt.Errorf("online backup from %s: %w", base, err)
	}
	return nil
}

// writeFileAtomic writes path through fill without ever leaving a partial
// file at path: fill writes a temporary file in the same directory, which is
// synced, closed and renamed over path, and the directory is synced so the
// rename survives a crash. On any failure the temporary file is removed and
// path is as it was.
func writeFileAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("write %s: %s is not a directory", path, dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename the finished backup to %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("the backup is in %s, but its directory cannot be synced: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("the backup is in %s, but syncing its directory failed: %w", path, err)
	}
	return nil
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "restore [FILE|-]",
		Short: "Load a backup into a new, empty --data-dir",
		Long: `Load a backup written by 'hark backup' into --data-dir, which must not hold a
database yet (restoring over live data would mix two idempotency ledgers).

The backup is checked whole first — its end marker, length and SHA-256 —
and nothing is written into --data-dir unless it is; a backup read from
standard input is copied to a temporary file beside --data-dir for that. A
restore that fails leaves --data-dir as it found it. Backups written by
hark before the framing (without an end marker) are refused: nothing in
them tells whether they are complete.

The admin token is not part of a backup: set HARK_ADMIN_TOKEN, or hark serve
generates a new one.`,
		Example: `  hark restore --data-dir ./hark-data-restored hark.backup
  gunzip -c hark.backup.gz | hark restore --data-dir ./hark-data-restored -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := cmd.InOrStdin()
			if (len(args) == 0 || args[0] == "-") && isTerminal(r) {
				return usageError{errors.New("no backup to read: standard input is a terminal"),
					"usage: " + cmd.UseLine() + " (give the backup FILE, or pipe it in with -)"}
			}
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			if err := server.Restore(g.dataDir, r, slog.New(slog.DiscardHandler)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "restored into %s\n", g.dataDir)
			return nil
		},
	}
}

// isTerminal reports whether f is a character device — a terminal, in
// practice — where a binary backup must not go and from which none comes.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
