package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newListenCommand is `hark listen`: a webhook receiver for development,
// the other end of a webhook destination. It checks every delivery's
// Standard Webhooks signature with the official library — as a real
// receiver should — prints what it got, and answers 204 (401 when the
// signature does not check).
func newListenCommand() *cobra.Command {
	var (
		secret string
		addr   string
	)
	cmd := &cobra.Command{
		Use:   "listen --secret whsec_… [--listen ADDR]",
		Short: "Receive a webhook destination's deliveries here and print them, checking each signature",
		Long: `Receive a webhook destination's deliveries on ADDR and print them, one line
each: the event type, the run, its workflow and recipients, and the
webhook-id. Every delivery's signature is checked with the destination's
signing secret (the official Standard Webhooks library); one that does not
check is answered 401 and printed as refused. For development: point a
destination at http://ADDR/ (hark serve --allow-private-destinations lets
it reach this machine). Ctrl-C stops it.`,
		Example: `  hark listen --secret "$SECRET" --listen 127.0.0.1:9000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				return usageError{fmt.Errorf("--secret: %w", err), "give the signing secret hark printed when the destination was created (whsec_…)"}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return listen(ctx, addr, wh, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&secret, "secret", os.Getenv("HARK_WEBHOOK_SECRET"), "the destination's signing secret, whsec_… (HARK_WEBHOOK_SECRET)")
	cmd.Flags().StringVar(&addr, "listen", "127.0.0.1:9000", "address to listen on")
	_ = cmd.MarkFlagRequired("secret")
	return cmd
}

// listen serves deliveries on addr until ctx ends.
func listen(ctx context.Context, addr string, wh *standardwebhooks.Webhook, out, errOut io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			fmt.Fprintf(errOut, "refused %s: the signature does not check: %v\n", r.Header.Get("webhook-id"), err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(out, describeDelivery(r.Header.Get("webhook-id"), body))
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(errOut, "listening on http://%s/ for signed deliveries; Ctrl-C stops\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// describeDelivery is the line printed for a checked delivery.
func describeDelivery(id string, body []byte) string {
	var msg struct {
		Type string `json:"type"`
		Data struct {
			ID          string   `json:"id"`
			WorkflowKey string   `json:"workflowKey"`
			Recipients  []string `json:"recipients"`
			Status      string   `json:"status"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return fmt.Sprintf("%s: %s", id, body)
	}
	if msg.Data.ID == "" {
		return fmt.Sprintf("%s %s", msg.Type, id)
	}
	return fmt.Sprintf("%s %s workflow=%s recipients=%s webhook-id=%s", msg.Type, msg.Data.ID, msg.Data.WorkflowKey,
		strings.Join(msg.Data.Recipients, ","), id)
}
