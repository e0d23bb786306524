package httpsource_test

import (
	"context"
	"fmt"
	"net/http"

	httpsource "github.com/harkhq/hark/plugins/http"
	"github.com/harkhq/hark/plugins/sdk"
)

// ExampleParsePath shows the path language: paths parse to their canonical
// form, and one outside the grammar says where and why.
func ExampleParsePath() {
	for _, s := range []string{`body["data"]["object"].customer`, `headers["x-github-event"]`, `body.items[0].sku`, `headers["X-GitHub-Event"]`} {
		p, err := httpsource.ParsePath(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(p)
	}
	// Output:
	// body.data.object.customer
	// headers["x-github-event"]
	// body.items[0].sku
	// path "headers[\"X-GitHub-Event\"]", column 8: header names are lowercase in paths: headers["x-github-event"]
}

// ExampleSource_Translate translates GitHub deliveries with the github
// preset: the event is the X-GitHub-Event header, the idempotency key the
// delivery's GUID. The first is GitHub's documented test vector: its
// signature is right, but "Hello, World!" is no JSON event.
func ExampleSource_Translate() {
	github := func(body, signature string) sdk.Delivery {
		return sdk.Delivery{
			Header: http.Header{
				"X-Github-Event":      {"ping"},
				"X-Github-Delivery":   {"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
				"X-Hub-Signature-256": {signature},
			},
			Body:     []byte(body),
			Settings: map[string]string{"preset": "github", "signing_secret": "It's a Secret to Everybody"},
		}
	}
	res, err := httpsource.HTTP().Translate(context.Background(), []sdk.Delivery{
		github("Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
		github("Hello, World?", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
		github(`{"zen":"Design for failure."}`, "sha256=81a7433d2a01f5cc903dfe82dab32559f4fef3203a0e8c1da4eea0ff07ed701a"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, r := range res {
		if r.Err != nil {
			fmt.Printf("delivery %d refused: %v\n", i, r.Err)
			continue
		}
		e := r.Events[0]
		fmt.Printf("delivery %d: %s %q key=%s data=%s\n", i, e.Type, e.Name, e.IdempotencyKey, e.Data)
	}
	// Output:
	// delivery 0 refused: bad request: the body must be a JSON object, or an array of objects
	// delivery 1 refused: bad signature: X-Hub-Signature-256 does not match the body's HMAC-SHA256 with the signing secret
	// delivery 2: track "ping" key="72d3162e-cc78-11e3-81ab-4c9367dc0958" data={"zen":"Design for failure."}
}
