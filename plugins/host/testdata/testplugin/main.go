// Command testplugin is a source plugin that misbehaves on request, for the
// plugin host's tests and the server's: it is a real plugin process built
// with plugins/sdk, so the host is tested against what it really runs.
//
// Its type is HARK_TESTPLUGIN_TYPE, or else its binary's name without the
// hark-source- prefix, so one build serves under several names. Files in its
// control directory (HARK_TESTPLUGIN_CONTROL, or else the binary's
// directory) change how it starts, and it appends a line to <type>.starts
// there every time it starts, so a test can count start attempts:
//
//   - <type>.nostart: exit with status 1 before the handshake.
//   - <type>.hangstart: wait, before the handshake, until the file is gone.
//
// Each delivery's body is a JSON object. {"test": "<command>"} misbehaves:
//
//   - hang: never answer (the context is ignored, as a stuck plugin would).
//   - crash: exit the process in the middle of the call.
//   - bad-index, negative-index: one event whose index is 5, or -1.
//   - dup-index: two events, both at index 0.
//   - dup-rejection: an event and a rejection, both at index 0.
//   - huge-error: refuse the delivery (bad request) with a 5 MB message.
//   - huge-reason: one event and one rejection with a 5 MB reason.
//   - how: one event whose name is the gRPC method the batch came by and
//     whose user id names the server stream it came over, so a test sees
//     whether batches share a stream.
//
// Any other object is one event: its "type", "event" and "userId" become the
// event's type, name and user id, "properties" its data.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/harkhq/hark/plugins/sdk"
)

// hugeBytes is the size of the oversized messages: far over any sane limit.
const hugeBytes = 5 << 20

func main() {
	typ := os.Getenv("HARK_TESTPLUGIN_TYPE")
	if typ == "" {
		typ = strings.TrimPrefix(filepath.Base(os.Args[0]), "hark-source-")
	}
	control := os.Getenv("HARK_TESTPLUGIN_CONTROL")
	if control == "" {
		control = filepath.Dir(os.Args[0])
	}
	if f, err := os.OpenFile(filepath.Join(control, typ+".starts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		_, _ = f.WriteString("start\n")
		_ = f.Close()
	}
	if exists(filepath.Join(control, typ+".nostart")) {
		os.Exit(1)
	}
	for exists(filepath.Join(control, typ+".hangstart")) {
		time.Sleep(20 * time.Millisecond)
	}
	sdk.Serve(source{typ: typ})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

type source struct{ typ string }

func (s source) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Type: s.typ, DisplayName: "Test " + s.typ, Version: "0.0.1", IdempotencyKey: "messageId"}, nil
}

func (s source) Translate(ctx context.Context, ds []sdk.Delivery) ([]sdk.Result, error) {
	return sdk.TranslateEach(ctx, ds, translate), nil
}

func translate(ctx context.Context, d sdk.Delivery) sdk.Result {
	var body map[string]any
	if err := json.Unmarshal(d.Body, &body); err != nil {
		return sdk.Result{Err: sdk.BadRequest("the body is not a JSON object: %v", err)}
	}
	ev := event(0, body, d.Body)
	switch body["test"] {
	case "hang":
		select {}
	case "crash":
		os.Exit(3)
	case "bad-index":
		ev.Index = 5
		return sdk.Result{Events: []sdk.Event{ev}}
	case "negative-index":
		ev.Index = -1
		return sdk.Result{Events: []sdk.Event{ev}}
	case "dup-index":
		return sdk.Result{Events: []sdk.Event{ev, ev}}
	case "dup-rejection":
		return sdk.Result{Events: []sdk.Event{ev}, Rejections: []sdk.Rejection{{Index: 0, Reason: "twice"}}}
	case "huge-error":
		return sdk.Result{Err: sdk.BadRequest("%s", huge())}
	case "huge-reason":
		return sdk.Result{Events: []sdk.Event{ev}, Rejections: []sdk.Rejection{{Index: 1, Reason: huge()}}}
	case "how":
		ev.Name, _ = grpc.Method(ctx)
		ev.UserID = fmt.Sprintf("%p", grpc.ServerTransportStreamFromContext(ctx))
		return sdk.Result{Events: []sdk.Event{ev}}
	}
	return sdk.Result{Events: []sdk.Event{ev}}
}

// huge is hugeBytes of two-byte runes after one ASCII byte, so a cut at an
// even byte count falls inside a rune.
func huge() string { return "x" + strings.Repeat("é", hugeBytes/2) }

func event(index int, body map[string]any, raw []byte) sdk.Event {
	str := func(k string) string { s, _ := body[k].(string); return s }
	ev := sdk.Event{Index: index, Type: str("type"), Name: str("event"), UserID: str("userId"), Original: raw}
	if p, ok := body["properties"]; ok {
		ev.Data, _ = json.Marshal(p)
	}
	return ev
}
