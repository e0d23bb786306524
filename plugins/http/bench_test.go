package httpsource_test

import (
	"context"
	"testing"

	"github.com/harkhq/hark/plugins/sdk"
)

// BenchmarkTranslate measures the plugin's share of one delivery: settings
// read, signature checked, body decoded and the event's fields read, for a
// Stripe event (signed timestamp, body paths) and a GitHub one (header
// paths).
func BenchmarkTranslate(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    sdk.Delivery
	}{
		{"stripe", delivery(stripeBody, settings("preset", "stripe", "signing_secret", stripeSecret, "user_id_path", "body.data.object.metadata.user_id"),
			"Stripe-Signature", stripeSign(stripeSecret, stripeBody, clock))},
		{"github", delivery(githubBody, settings("preset", "github", "signing_secret", githubSecret),
			"X-GitHub-Event", "issues", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256", "sha256="+hexSign(githubSecret, githubBody))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ds := []sdk.Delivery{bc.d}
			b.SetBytes(int64(len(bc.d.Body)))
			b.ReportAllocs()
			for b.Loop() {
				res, err := src.Translate(context.Background(), ds)
				if err != nil || len(res[0].Events) != 1 {
					b.Fatalf("translate: %v %+v", err, res)
				}
			}
		})
	}
}
