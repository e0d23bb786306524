package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/harkhq/hark/server"
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
idempotency ledger, events and workflow runs (Badger's backup stream). When a
hark serve holds the data dir, the backup is taken online through that server
(--server, with the admin token). Restore it with 'hark restore'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			err := server.Backup(g.dataDir, w, slog.New(slog.DiscardHandler))
			if !errors.Is(err, server.ErrDataDirInUse) {
				return err
			}
			return onlineBackup(g, w)
		},
	}
	cmd.Flags().StringVarP(&out, "file", "f", "-", "where to write the backup (- is standard output)")
	return cmd
}

// onlineBackup streams the backup from the running server.
func onlineBackup(g *globalOptions, w io.Writer) error {
	base, err := serverURL(g.server)
	if err != nil {
		return err
	}
	token, _ := g.resolveToken(base)
	req, err := http.NewRequest(http.MethodGet, base+server.BackupPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the data dir is in use and the server at %s cannot be reached for an online backup: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("online backup from %s: %s: %s", base, resp.Status, msg)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "restore [FILE|-]",
		Short: "Load a backup into a new, empty --data-dir",
		Long: `Load a backup written by 'hark backup' into --data-dir, which must not hold a
database yet (restoring over live data would mix two idempotency ledgers).
The admin token is not part of a backup: set HARK_ADMIN_TOKEN, or hark serve
generates a new one.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := cmd.InOrStdin()
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
