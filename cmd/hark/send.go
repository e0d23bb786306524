package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// maxAnswer bounds how much of the webhook's answer send reads.
const maxAnswer = 8 << 20

func newSendCommand(g *globalOptions) *cobra.Command {
	var env, source, secret, scheme, sigHeader string
	var headers []string
	cmd := &cobra.Command{
		Use:   "send --env ENV --source ID FILE",
		Short: "Post a payload file to a source's webhook URL, as the source would (for trying things out)",
		Long: `Post FILE, as it is, to the webhook URL of a source in an environment, as
the source itself would: for a Segment source, a single event, an HTTP API
batch {"batch":[…]} or a bare array of events. FILE - reads standard input.
It prints what hark did with each event. With --secret, the body is signed
as its sender signs it: by default with X-Signature as Segment does (for a
source environment with a shared_secret setting); with --sign, as the http
source's preset of that name verifies it (stripe, standard_webhooks, clerk,
shopify, github, or hmac_sha256_hex with --signature-header). --header adds
the headers a preset reads, e.g. X-GitHub-Event.

The webhook URL needs no admin token (its own token is the secret), so
send only asks the API for the URL.`,
		Example: `  hark send --env development --source src_123 signed-up.json
  echo '{"type":"track","event":"Signed Up","userId":"u1"}' | hark send --env development --source src_123 -
  hark send --env development --source src_456 --sign github --secret "$SECRET" \
    --header 'X-GitHub-Event: issues' --header 'X-GitHub-Delivery: 72d3162e' issue.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, a *api) error {
				sign, err := newSigner(scheme, secret, sigHeader)
				if err != nil {
					return usageError{err, "see 'hark send --help'"}
				}
				extra, err := parseHeaders(headers)
				if err != nil {
					return usageError{err, "see 'hark send --help'"}
				}
				body, err := readPayload(args[0])
				if err != nil {
					return err
				}
				res, err := a.sources.GetSource(ctx, connect.NewRequest(&harkv1.GetSourceRequest{Id: source}))
				if err != nil {
					return err
				}
				url := ""
				var envs []string
				for _, se := range res.Msg.GetSource().GetEnvironments() {
					envs = append(envs, se.GetEnvironment())
					if se.GetEnvironment() == env {
						url = se.GetIngestUrl()
					}
				}
				if url == "" {
					return fmt.Errorf("source %s has no environment %q (it has: %s)", source, env, strings.Join(envs, ", "))
				}
				ans, err := a.post(ctx, url, body, extra, sign)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(ans)
				}
				return a.printReceived(ans)
			})
		},
	}
	envFlag(g, cmd, &env)
	cmd.Flags().StringVar(&source, "source", "", "source id")
	cmd.Flags().StringVar(&secret, "secret", "", "secret to sign the body with (Segment's X-Signature unless --sign says otherwise)")
	cmd.Flags().StringVar(&scheme, "sign", "", "how to sign with --secret: "+strings.Join(signSchemes, ", ")+" (default segment)")
	cmd.Flags().StringVar(&sigHeader, "signature-header", "", "the signature header of --sign hmac_sha256_hex")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, `a request header to send, "Name: value" (repeatable)`)
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

func readPayload(name string) ([]byte, error) {
	b, err := readInput(name)
	if err != nil {
		return nil, fmt.Errorf("read the payload: %w", err)
	}
	return b, nil
}

// readInput reads the file a command is given, "-" being standard input.
func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// post sends body to a webhook URL and reads hark's answer. The admin token
// is not sent: the URL carries its own secret, and it may be a public
// address that should never see the admin token.
func (a *api) post(ctx context.Context, url string, body []byte, headers http.Header, sign *signer) (*harkv1.ReceiveResponse, error) {
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for name, values := range headers {
		req.Header[name] = values
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "hark-cli")
	if sign != nil {
		if err := sign.sign(req.Header, body, time.Now()); err != nil {
			return nil, err
		}
	}
	res, err := a.http.Do(req)
	if err != nil {
		return nil, &hintError{fmt.Errorf("post to %s: %w", url, err), "the webhook URL is built from hark serve's --public-url; is it reachable from here?"}
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("the webhook answered %s: %s", res.Status, answerMessage(answer))
	}
	out := &harkv1.ReceiveResponse{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(answer, out); err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", url, err)
	}
	return out, nil
}

// answerMessage is the message of an error answer (a google.rpc.Status or
// Connect error, both with "message"), or the body as it is.
func answerMessage(b []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(no message)"
}

func (a *api) printReceived(r *harkv1.ReceiveResponse) error {
	rows := make([][]string, len(r.GetEvents()))
	for i, e := range r.GetEvents() {
		rows[i] = []string{fmt.Sprint(e.GetIndex()), e.GetId(), enumName(e.GetStatus(), eventStatusPrefix), e.GetReason()}
	}
	if err := table(a.out, []string{"INDEX", "EVENT", "STATUS", "REASON"}, rows); err != nil {
		return err
	}
	return nil
}
