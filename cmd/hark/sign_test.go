package main

import (
	"testing"
)

// TestCLISendSigns sends a body to http sources with each verification
// preset, signed by `hark send --sign` as that provider signs: each is
// processed under the event name its preset reads, the same send with
// another secret is refused with 401, and flag mistakes are usage errors
// said before anything is sent.
func TestCLISendSigns(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	body := writeFile(t, "body.json", `{"id":"evt_1","type":"user.created","created":1700000000,"data":{"object":{"id":"u1"}}}`)
	tests := []struct {
		scheme, preset, secret string
		settings, flags        []string
		event                  string
	}{
		{"stripe", "stripe", "whsec_test_secret", nil, nil, "user.created"},
		{"standard_webhooks", "standard_webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", []string{"event_type_path=body.type"}, nil, "user.created"},
		{"clerk", "clerk", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil, nil, "user.created"},
		{"shopify", "shopify", "shpss_0d6f2b", nil, []string{"--header", "X-Shopify-Topic: orders/create", "--header", "X-Shopify-Webhook-Id: w1"}, "orders/create"},
		{"github", "github", "It's a Secret to Everybody", nil, []string{"-H", "X-GitHub-Event: issues", "-H", "X-GitHub-Delivery: d1"}, "issues"},
		{"hmac_sha256_hex", "hmac_sha256_hex", "s3cr3t", []string{"signature_header=X-Acme-Signature", "event_type_path=body.type"}, []string{"--signature-header", "X-Acme-Signature"}, "user.created"},
	}
	for _, tt := range tests {
		t.Run(tt.scheme, func(t *testing.T) {
			t.Parallel()
			var src jsonSource
			harkJSON(t, env, &src, "sources", "create", "--type", "http", "--name", tt.scheme)
			settings := []string{"sources", "settings", src.ID, "--env", "development", "--set", "preset=" + tt.preset, "--set", "signing_secret=" + tt.secret}
			for _, kv := range tt.settings {
				settings = append(settings, "--set", kv)
			}
			mustHark(t, env, settings...)
			send := append([]string{"send", "--env", "development", "--source", src.ID, "--sign", tt.scheme}, tt.flags...)
			var received struct {
				Events []struct{ ID, Status string } `json:"events"`
			}
			harkJSON(t, env, &received, append(send, "--secret", tt.secret, "-o", "json", body)...)
			if len(received.Events) != 1 || received.Events[0].Status != "SOURCE_EVENT_STATUS_PROCESSED" {
				t.Fatalf("signed send: %+v, want one processed event", received)
			}
			wantContains(t, "events get", mustHark(t, env, "events", "get", received.Events[0].ID, "--env", "development"), tt.event)
			other := "whsec_b3RoZXIgc2VjcmV0"
			wantContains(t, "wrong secret", wantFail(t, env, append(send, "--secret", other, body)...), "401")
		})
	}
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"--sign", "github"},
			{"--sign", "nope", "--secret", "x"},
			{"--sign", "hmac_sha256_hex", "--secret", "x"},
			{"--signature-header", "X-Sig", "--secret", "x"},
			{"--sign", "standard_webhooks", "--secret", "not base64!"},
			{"--header", "no colon", "--secret", "x"},
		} {
			stderr := wantFail(t, env, append([]string{"send", "--env", "development", "--source", "src_any"}, append(args, body)...)...)
			wantContains(t, "stderr", stderr, "hint: see 'hark send --help'")
		}
	})
}
