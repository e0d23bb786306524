package sdk_test

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/harkhq/hark/plugins/sdk"
)

// pingSource is a whole plugin for a made-up sender, "ping", that posts a
// JSON array of {"id", "user", "what", "props"} objects and signs nothing but
// sends a token header when the source environment sets one.
//
// Its main is one line:
//
//	func main() { sdk.Serve(pingSource{}) }
type pingSource struct{}

// Describe says who the plugin is and which settings it takes.
func (pingSource) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Type:        "ping",
		DisplayName: "Ping",
		Version:     "0.1.0",
		Settings: []sdk.Setting{
			{Key: "token", Description: "Token the sender puts in X-Ping-Token.", Secret: true},
		},
		IdempotencyKey: "id",
	}, nil
}

// Translate handles each delivery on its own.
func (pingSource) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, translatePing), nil
}

func translatePing(_ context.Context, d sdk.Delivery) sdk.Result {
	if want := d.Settings["token"]; want != "" &&
		subtle.ConstantTimeCompare([]byte(d.Header.Get("X-Ping-Token")), []byte(want)) != 1 {
		return sdk.Result{Err: sdk.BadSignature("X-Ping-Token is missing or wrong")}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(d.Body, &items); err != nil {
		return sdk.Result{Err: sdk.BadRequest("the body must be a JSON array: %v", err)}
	}
	var res sdk.Result
	for i, raw := range items {
		var p struct {
			ID    json.RawMessage `json:"id"`
			User  string          `json:"user"`
			What  string          `json:"what"`
			Props json.RawMessage `json:"props"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.What == "" {
			res.Rejections = append(res.Rejections, sdk.Rejection{Index: i, Reason: "each item needs a string `what`"})
			continue
		}
		res.Events = append(res.Events, sdk.Event{
			Index:          i,
			Type:           "track",
			Name:           p.What,
			UserID:         p.User,
			IdempotencyKey: p.ID,
			Data:           p.Props,
			Original:       raw,
		})
	}
	return res
}

// ExampleTranslateEach runs a small plugin's Translate directly. In a test,
// sdk.TestSource(t, pingSource{}) gives the same Source behind a real gRPC
// connection, as hark calls it.
func ExampleTranslateEach() {
	var src sdk.Source = pingSource{}
	results, err := src.Translate(context.Background(), []sdk.Delivery{
		{Body: []byte(`[{"id":"p1","user":"u1","what":"Signed Up","props":{"plan":"pro"}}, {"user":"u2"}]`)},
		{Body: []byte(`not json`)},
		{
			Header:   http.Header{"X-Ping-Token": {"guess"}},
			Body:     []byte(`[]`),
			Settings: map[string]string{"token": "s3cret"},
		},
	})
	if err != nil {
		fmt.Println("plugin failed:", err)
		return
	}
	for i, r := range results {
		if r.Err != nil {
			fmt.Printf("delivery %d refused: %v\n", i, r.Err)
			continue
		}
		for _, e := range r.Events {
			fmt.Printf("delivery %d event %d: %s %q user=%s key=%s data=%s\n", i, e.Index, e.Type, e.Name, e.UserID, e.IdempotencyKey, e.Data)
		}
		for _, rej := range r.Rejections {
			fmt.Printf("delivery %d event %d rejected: %s\n", i, rej.Index, rej.Reason)
		}
	}
	// Output:
	// delivery 0 event 0: track "Signed Up" user=u1 key="p1" data={"plan":"pro"}
	// delivery 0 event 1 rejected: each item needs a string `what`
	// delivery 1 refused: bad request: the body must be a JSON array: invalid character 'o' in literal null (expecting 'u')
	// delivery 2 refused: bad signature: X-Ping-Token is missing or wrong
}
