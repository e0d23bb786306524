package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The http source end to end: a real server, the http plugin as a real
// process (this test binary re-executed), deliveries signed as each
// provider signs them, at the time they are sent (the plugin checks
// timestamps against its own clock).

func hsMAC(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// hsStripeSignature is Stripe-Signature for body, signed now.
func hsStripeSignature(secret, body string) string {
	t := strconv.FormatInt(time.Now().Unix(), 10)
	return "t=" + t + ",v1=" + hex.EncodeToString(hsMAC([]byte(secret), t, ".", body))
}

// hsSource creates an http source and sets its development settings (JSON
// object members) with idempotency on.
func hsSource(t *testing.T, h *harness, name, pluginSettings string) (*harkv1.Source, string) {
	t.Helper()
	src := h.createSourceOfType(t, name, "http")
	h.patchSourceEnv(t, src.GetId(), "development", `{"idempotencyEnabled":true,"pluginSettings":{`+pluginSettings+`}}`)
	return src, devURL(t, src)
}

const (
	hsStripeSecret = "whsec_7c1f0b3e9a2d4c68"
	hsStripeEvent  = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","created":1686089970,"type":"customer.created","data":{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jennyrosen@example.com","metadata":{"user_id":"u1"}}}}`
)

// TestHTTPSourceStripe sends Stripe events to an http source with the
// stripe preset: a signed one is processed as track "customer.created" with
// its event id as idempotency key and starts the run of a trigger on
// customer.created; its redelivery is a duplicate; tampered, stale or
// unsigned ones are 401 and leave nothing behind.
func TestHTTPSourceStripe(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	src, ingest := hsSource(t, h, "Stripe", `"preset":"stripe","signing_secret":"`+hsStripeSecret+`"`)
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/workflows", `{"key":"welcome"}`), http.StatusOK)
	trigger := trgJSON(t, map[string]any{
		"workflowKey": "welcome", "sourceId": src.GetId(), "event": "customer.created",
		"condition": `body.data.object.object == "customer"`,
		"mapping": map[string]string{
			"recipients": `{"id": body.data.object.metadata.user_id, "email": data.data.object.email}`,
			"data":       `{"customer": body.data.object.id}`,
		},
	})
	wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments/development/triggers", trigger), http.StatusOK)

	// Refused deliveries first: none of them may be stored.
	tampered := strings.Replace(hsStripeEvent, "jennyrosen", "mallory", 1)
	stale := "t=" + strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10) + ",v1=" +
		hex.EncodeToString(hsMAC([]byte(hsStripeSecret), strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10), ".", hsStripeEvent))
	for _, tt := range []struct {
		name, body, signature, reason string
	}{
		{"tampered", tampered, hsStripeSignature(hsStripeSecret, hsStripeEvent), "no v1 signature in Stripe-Signature matches"},
		{"signed with another secret", hsStripeEvent, hsStripeSignature("whsec_other", hsStripeEvent), "no v1 signature in Stripe-Signature matches"},
		{"stale", hsStripeEvent, stale, "Stripe-Signature's timestamp is 6m"},
		{"unsigned", hsStripeEvent, "", "the Stripe-Signature header is missing"},
	} {
		var header []string
		if tt.signature != "" {
			header = []string{"Stripe-Signature", tt.signature}
		}
		r, _ := h.deliver(t, ingest, []byte(tt.body), header...)
		wantStatus(t, r, http.StatusUnauthorized)
		if !strings.Contains(string(r.body), tt.reason) {
			t.Errorf("%s: answer %s, want it to say %q", tt.name, r.body, tt.reason)
		}
	}
	if evs := h.sourceEvents(t, "development", src.GetId()); len(evs) != 0 {
		t.Fatalf("refused deliveries were logged: %v", evs)
	}

	first := h.deliverOne(t, ingest, []byte(hsStripeEvent), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	if first.GetStatus() != statusProcessed {
		t.Fatalf("signed event = %v, want processed", first)
	}
	ev := h.getEvent(t, "development", first.GetId())
	if ev.GetType() != "track" || ev.GetName() != "customer.created" || ev.GetIdempotencyKey() != "evt_1NG8Du2eZvKYlo2CUI79vXWy" ||
		!ev.GetTimestamp().AsTime().Equal(time.Unix(1686089970, 0)) {
		t.Fatalf("logged event = type %q name %q key %q timestamp %v; want track, customer.created, evt_1NG8Du2eZvKYlo2CUI79vXWy, 1686089970",
			ev.GetType(), ev.GetName(), ev.GetIdempotencyKey(), ev.GetTimestamp().AsTime())
	}
	if got := field(ev.GetEvent(), "data", "object", "id").GetStringValue(); got != "cus_NffrFeUfNV2Hib" {
		t.Fatalf("logged original data.object.id = %q, want the body as sent", got)
	}
	actions := ev.GetActions()
	if len(actions) != 1 || actions[0].GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS || actions[0].GetWorkflowRunId() == "" {
		t.Fatalf("actions = %v, want the trigger's run started", actions)
	}
	run := decode(t, h.rest(t, http.MethodGet, "/v1/environments/development/workflow-runs/"+actions[0].GetWorkflowRunId(), ""), &harkv1.WorkflowRun{})
	if !slices.Equal(run.GetRecipients(), []string{"u1"}) || run.GetData().GetFields()["customer"].GetStringValue() != "cus_NffrFeUfNV2Hib" {
		t.Fatalf("run = %v, want recipient u1 and data.customer cus_NffrFeUfNV2Hib", run)
	}

	// Stripe retries an event with a new signature: the event id makes it
	// a duplicate, and no second run starts.
	again := h.deliverOne(t, ingest, []byte(hsStripeEvent), "Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent))
	if again.GetStatus() != statusIdempotent {
		t.Fatalf("redelivery = %v, want idempotent", again)
	}
	if got := wantDuplicateOf(t, h, "development", again.GetId(), first.GetId()); len(got.GetActions()) != 0 {
		t.Fatalf("duplicate ran actions: %v", got.GetActions())
	}
}

// TestHTTPSourceProviders sends each provider's sample delivery, signed as
// it documents, to an http source with its preset: each is processed under
// the event name its preset reads, and the same delivery with its body
// changed is 401 and in the source environment's refused-delivery log.
func TestHTTPSourceProviders(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	const (
		clerkSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		clerkBody     = `{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"},"object":"event","timestamp":1654012591835,"type":"user.created"}`
		shopifySecret = "shpss_0d6f2b"
		shopifyBody   = `{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}`
		githubSecret  = "It's a Secret to Everybody"
		githubBody    = `{"action":"opened","issue":{"number":1347},"sender":{"login":"octocat","id":1}}`
	)
	clerkKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(clerkSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		preset, secret, body, name, key string
		headers                         func(body string) []string
	}{
		{"stripe", hsStripeSecret, hsStripeEvent, "customer.created", "evt_1NG8Du2eZvKYlo2CUI79vXWy", func(body string) []string {
			return []string{"Stripe-Signature", hsStripeSignature(hsStripeSecret, hsStripeEvent)}
		}},
		{"clerk", clerkSecret, clerkBody, "user.created", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", func(string) []string {
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			sig := base64.StdEncoding.EncodeToString(hsMAC(clerkKey, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.", ts, ".", clerkBody))
			return []string{"Svix-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "Svix-Timestamp", ts, "Svix-Signature", "v1," + sig}
		}},
		{"shopify", shopifySecret, shopifyBody, "orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", func(string) []string {
			return []string{"X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
				"X-Shopify-Triggered-At", "2023-03-29T18:00:27.877041743Z",
				"X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(hsMAC([]byte(shopifySecret), shopifyBody))}
		}},
		{"github", githubSecret, githubBody, "issues", "72d3162e-cc78-11e3-81ab-4c9367dc0958", func(string) []string {
			return []string{"X-GitHub-Event", "issues", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
				"X-Hub-Signature-256", "sha256=" + hex.EncodeToString(hsMAC([]byte(githubSecret), githubBody))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			t.Parallel()
			src, ingest := hsSource(t, h, tt.preset, `"preset":"`+tt.preset+`","signing_secret":`+trgJSON(t, tt.secret))
			headers := tt.headers(tt.body)
			tampered := strings.Replace(tt.body, "}", `,"x":1}`, 1)
			r, _ := h.deliver(t, ingest, []byte(tampered), headers...)
			wantStatus(t, r, http.StatusUnauthorized)
			refused := h.listRefusals(t, "development", src.GetId(), nil)
			if len(refused) != 1 || refused[0].GetStatusCode() != http.StatusUnauthorized ||
				refused[0].GetSizeBytes() != int64(len(tampered)) || refused[0].GetReason() == "" {
				t.Fatalf("refusal log after a tampered %s delivery = %v, want one 401 of %d bytes with its reason", tt.preset, refused, len(tampered))
			}
			got := h.getEvent(t, "development", h.deliverOne(t, ingest, []byte(tt.body), headers...).GetId())
			if got.GetType() != "track" || got.GetName() != tt.name || got.GetIdempotencyKey() != tt.key || got.GetSourceId() != src.GetId() {
				t.Fatalf("logged event = type %q name %q key %q; want track, %q, %q", got.GetType(), got.GetName(), got.GetIdempotencyKey(), tt.name, tt.key)
			}
		})
	}
}

// TestHTTPSourceSettings checks how the http source's settings behave in a
// real server: the preset is required (saving without one is refused, and
// deliveries wait for it with a 503), and so are the secret of a verifying
// preset and the header of hmac_sha256_hex; the secret reads back masked;
// settings that cannot verify or a path outside the grammar refuse
// deliveries with what to fix.
func TestHTTPSourceSettings(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	types := decode(t, h.rest(t, http.MethodGet, "/v1/source-types", ""), &harkv1.ListSourceTypesResponse{}).GetSourceTypes()
	i := slices.IndexFunc(types, func(st *harkv1.SourceType) bool { return st.GetType() == "http" })
	if i < 0 || types[i].GetOrigin() != harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_BUILT_IN ||
		types[i].GetHealth() != harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING {
		t.Fatalf("source types = %v, want http built in and serving", types)
	}
	for _, s := range types[i].GetSettings() {
		if (s.GetKey() == "preset") != s.GetRequired() || (s.GetKey() == "signing_secret") != s.GetSecret() {
			t.Errorf("setting %v: only preset is required, only signing_secret secret", s)
		}
	}

	src := h.createSourceOfType(t, "Webhooks", "http")
	ingest := devURL(t, src)
	// No preset yet: the source is being set up, and senders retry a 503.
	r, _ := h.deliver(t, ingest, []byte(`{"type":"a"}`))
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), `setting \"preset\" is required`) {
		t.Errorf("answer %s, want it to name the preset setting", r.body)
	}
	r = h.rest(t, http.MethodPatch, "/v1/sources/"+src.GetId()+"/environments/development", `{"pluginSettings":{"signing_secret":"s"}}`)
	wantStatus(t, r, http.StatusBadRequest)
	wantViolation(t, restViolations(t, r), "pluginSettings.preset")

	patch := func(settings string) {
		t.Helper()
		se := h.patchSourceEnv(t, src.GetId(), "development", `{"pluginSettings":{`+settings+`}}`)
		if s, ok := se.GetPluginSettings()["signing_secret"]; ok && s != "********" {
			t.Fatalf("signing_secret reads back as %q, want it masked", s)
		}
	}
	deliver := func(wantCode int, wantMessage string, header ...string) {
		t.Helper()
		r, _ := h.deliver(t, ingest, []byte(`{"type":"a"}`), header...)
		wantStatus(t, r, wantCode)
		if !strings.Contains(string(r.body), wantMessage) {
			t.Errorf("answer %s, want it to say %q", r.body, wantMessage)
		}
	}
	// A verifying preset without its secret, or hmac_sha256_hex without
	// its header, could only refuse every delivery: it does not save.
	for _, tt := range []struct{ settings, field, why string }{
		{`"preset":"github"`, "pluginSettings.signing_secret", `when preset is \"github\"`},
		{`"preset":"hmac_sha256_hex","signing_secret":"s"`, "pluginSettings.signature_header", `when preset is \"hmac_sha256_hex\"`},
	} {
		r := h.rest(t, http.MethodPatch, "/v1/sources/"+src.GetId()+"/environments/development", `{"pluginSettings":{`+tt.settings+`}}`)
		wantStatus(t, r, http.StatusBadRequest)
		wantViolation(t, restViolations(t, r), tt.field)
		if !strings.Contains(string(r.body), tt.why) {
			t.Errorf("saving %s: %s, want it to say %s", tt.settings, r.body, tt.why)
		}
	}
	patch(`"preset":"none","signing_secret":"s3cret"`)
	deliver(http.StatusUnauthorized, `signing_secret is set, but preset \"none\" verifies nothing`)
	patch(`"preset":"hmac_sha256_hex","signature_header":"X-Acme-Signature","event_type_path":"body.a-b"`)
	deliver(http.StatusUnauthorized, "the x-acme-signature header is missing")
	deliver(http.StatusBadRequest, `event_type_path is not a valid path: path \"body.a-b\", column 7: unexpected '-'`,
		"X-Acme-Signature", hex.EncodeToString(hsMAC([]byte("s3cret"), `{"type":"a"}`)))
	patch(`"event_type_path":"body.type"`)
	ev := h.deliverOne(t, ingest, []byte(`{"type":"a"}`), "X-Acme-Signature", "sha256="+hex.EncodeToString(hsMAC([]byte("s3cret"), `{"type":"a"}`)))
	if got := h.getEvent(t, "development", ev.GetId()); got.GetName() != "a" || got.GetType() != "track" {
		t.Fatalf("logged event = %v, want track a", got)
	}
}

// TestHTTPSourceLongValues sends an event whose type and user id are as
// long as an event may be: it must be refused alone with a reason (400),
// never fail the commit it shares with other deliveries.
func TestHTTPSourceLongValues(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	_, ingest := hsSource(t, h, "Long", `"preset":"none","event_type_path":"body.type","user_id_path":"body.user"`)
	for _, body := range []string{
		`{"type":"` + strings.Repeat("t", 100_000) + `"}`,
		`{"type":"a","user":"` + strings.Repeat("u", 100_000) + `"}`,
	} {
		r, _ := h.deliver(t, ingest, []byte(body))
		wantStatus(t, r, http.StatusBadRequest)
	}
	h.deliverOne(t, ingest, []byte(`{"type":"a"}`))
}
