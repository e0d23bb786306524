package engine

// FuzzMapping fuzzes how trigger expressions become workflow runs (issue 8,
// "Fuzzing": mapping results into runs). It runs inside the package, on the
// engine's own evaluate, readMapping and startRun, with a fake transaction
// below the Store interface; the Badger store cannot be imported here
// (it imports this package). Crashers are kept in
// testdata/fuzz/FuzzMapping.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// mfzTx is the transaction evaluate and startRun see: an active workflow
// new-comment, the identified users u2 and actor1, and writes that encode
// records as the Badger store does (protobuf), plus protojson, which every
// REST and Connect JSON client reads them in. Any other Tx method panics
// through the nil embedded interface, which the fuzzer reports: evaluation
// must not touch other state.
type mfzTx struct {
	Tx
	users  map[string]*harkv1.User
	runs   []*harkv1.WorkflowRun
	cursor uint64
}

func (tx *mfzTx) Workflow(key string) (*harkv1.Workflow, error) {
	if key != "new-comment" {
		return nil, &NotFoundError{Resource: "workflow", ID: key}
	}
	return &harkv1.Workflow{Key: key, Name: "New comment", Active: true}, nil
}

func (tx *mfzTx) User(env, id string) (*harkv1.User, error) {
	if u, ok := tx.users[env+"\x00"+id]; ok {
		return proto.CloneOf(u), nil
	}
	return nil, &NotFoundError{Resource: "user", ID: id}
}

// mfzEncode fails as a store or a JSON client would on m.
func mfzEncode(m proto.Message) error {
	if _, err := proto.Marshal(m); err != nil {
		return fmt.Errorf("store would refuse it: %w", err)
	}
	if _, err := protojson.Marshal(m); err != nil {
		return fmt.Errorf("JSON clients could not read it: %w", err)
	}
	return nil
}

func (tx *mfzTx) PutUser(u *harkv1.User) error {
	if err := mfzEncode(u); err != nil {
		return fmt.Errorf("user %q: %w", u.GetId(), err)
	}
	tx.users[u.GetEnvironment()+"\x00"+u.GetId()] = u
	return nil
}

func (tx *mfzTx) AppendRunFeed(string, string, time.Time) (uint64, error) {
	tx.cursor++
	return tx.cursor, nil
}

func (tx *mfzTx) PutWorkflowRun(run *harkv1.WorkflowRun, _ time.Time) error {
	if err := mfzEncode(run); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	tx.runs = append(tx.runs, run)
	return nil
}

// Tenants and objects: none exist; an inline tenant is written as the
// store would encode it.
func (tx *mfzTx) Tenant(_, id string) (*harkv1.Tenant, error) {
	return nil, &NotFoundError{Resource: "tenant", ID: id}
}

func (tx *mfzTx) PutTenant(t *harkv1.Tenant) error {
	if err := mfzEncode(t); err != nil {
		return fmt.Errorf("tenant %q: %w", t.GetId(), err)
	}
	return nil
}

func (tx *mfzTx) Object(_, _, id string) (*harkv1.Object, error) {
	return nil, &NotFoundError{Resource: "object", ID: id}
}

// Destinations: the fuzzed environment has none, so runs write no
// deliveries.
func (tx *mfzTx) Destinations(string, string, int) ([]*harkv1.Destination, error) { return nil, nil }

// mfzEvent is the fixed event every mapping runs against: a Segment track
// call with text in several scripts (so byte slicing can cut a character),
// numbers, lists and nested objects.
const mfzEvent = `{
	"type": "track", "event": "Comment Created", "userId": "actor1", "anonymousId": "anon-1",
	"messageId": "msg-1", "timestamp": "2026-01-02T03:04:05Z",
	"properties": {
		"post": {"id": 42, "title": "Héllo wörld ✓ 日本語"},
		"comment": {"id": 7, "body": "Nice post 👍"},
		"recipients": ["u2", "u3", {"id": "u9", "email": "u9@example.org", "name": "Nine"}],
		"many": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
		"big": 1e300, "neg": -0.5, "vip": true, "none": null,
		"tags": ["a", "b"]
	},
	"context": {"traits": {"email": "actor@example.org"}, "library": {"name": "analytics.js"}},
	"traits": {"plan": "team"}
}`

// mfzFields are the trigger fields a fuzzed expression goes into.
var mfzFields = []string{"condition", "mapping.recipients", "mapping.actor", "mapping.tenant", "mapping.data", "mapping.cancellationKey"}

func FuzzMapping(f *testing.F) {
	seeds := []string{
		// Knock mappings of every generation.
		`properties.recipients`, `data.recipients`, `body.properties.recipients`, `userId`, `user_id`,
		`[userId, "u2"]`, `{"id": "u2", "name": properties.post.title}`, `{"id": properties.comment.id}`,
		`properties.comment`, `{"post": data.post.title, "c": body.properties.comment}`, `data`,
		`properties.comment.id`, `string(properties.comment.id)`, `headers["x-request-id"]`,
		`properties.post.id == 42`, `properties.vip && userId != ""`, `properties.none`,
		// Shapes the mapping must refuse.
		`[["u2"]]`, `{"collection": "projects", "id": "p1"}`, `{"name": "no id"}`, `42`, `true`,
		`map(1..1001, "u2")`, `map(1..1000, string(#))`, `{"id": repeat("x", 300)}`,
		`[1, 2]`, `"u2" + 1`, `properties.tags[5]`, `1/0`, `{"inf": 1/0}`, `-(1/0)`,
		`{"n": properties.big * properties.big}`, `properties.neg ** 0.5`,
		// Text that is not valid UTF-8 once sliced or decoded.
		`properties.post.title[0:2]`, `properties.comment.body[10:11]`, `fromBase64("/w==")`,
		`{"id": "u2", "name": properties.post.title[1:2]}`, `headers["x-raw"]`, `[headers["x-raw"]]`,
		`{"d": fromBase64("gA==")}`, `{"id": fromBase64("/w==")}`,
		// Keys and values that are odd but valid.
		`{"": 1}`, `{"id": "u2", "": "x", "a.b": null}`, `{"id": "\u0000"}`, `""`, `[""]`, `[nil, "u2"]`,
		`let x = properties; x.post`, `properties | keys()`, `sortBy(properties.tags, #)`, `now()`,
	}
	for _, s := range seeds {
		for i := range mfzFields {
			f.Add(uint8(i), s)
		}
	}

	var original map[string]any
	if err := json.Unmarshal([]byte(mfzEvent), &original); err != nil {
		f.Fatal(err)
	}
	eventStruct, err := structpb.NewStruct(original)
	if err != nil {
		f.Fatal(err)
	}
	ev := &harkv1.SourceEvent{
		Id: "evt_fuzz", SourceId: "src_fuzz", Environment: "development", Type: "track", Name: "Comment Created",
		UserId: "actor1", Event: eventStruct, Data: eventStruct.GetFields()["properties"].GetStructValue(),
	}
	// An obs-text header value: HTTP/1.1 lets bytes over 0x7f through.
	headers := http.Header{"Host": {"hark.example.com"}, "X-Request-Id": {"req-1"}, "X-Raw": {"caf\xe9"}}
	env := eventEnv(ev, headers)
	e := &Engine{
		log: slog.New(slog.DiscardHandler), now: time.Now, metrics: noMetrics{},
		eventRetention: DefaultEventRetention, runRetention: DefaultRunRetention,
		maxUserProperties: DefaultMaxUserProperties, maxUserBytes: DefaultMaxUserBytes,
	}

	f.Fuzz(func(t *testing.T, field uint8, source string) {
		name := mfzFields[int(field)%len(mfzFields)]
		tr := &harkv1.Trigger{
			Id: "trg_fuzz", Environment: "development", SourceId: "src_fuzz", EventType: "track", Event: "Comment Created",
			WorkflowKey: "new-comment", Status: harkv1.TriggerStatus_TRIGGER_STATUS_ACTIVE, Mapping: &harkv1.TriggerMapping{},
		}
		m := tr.GetMapping()
		switch name {
		case "condition":
			tr.Condition = source
		case "mapping.recipients":
			m.Recipients = source
		case "mapping.actor":
			m.Actor = source
		case "mapping.tenant":
			m.Tenant = source
		case "mapping.data":
			m.Data = source
		case "mapping.cancellationKey":
			m.CancellationKey = source
		}

		// Compile may fail, with an ExpressionError naming the field.
		ct, err := compileTrigger(tr)
		if err != nil {
			var xe *ExpressionError
			if !errors.As(err, &xe) {
				t.Fatalf("compile %s %q: %T %v, want an *ExpressionError", name, source, err, err)
			}
			if source != "" && (xe.Field != name || xe.Line < 1 || xe.Column < 1 || xe.Message == "") {
				t.Fatalf("compile %s %q: %+v, want field %s, line and column from 1 and a message", name, source, xe, name)
			}
			return
		}

		tx := &mfzTx{users: map[string]*harkv1.User{
			"development\x00u2":     {Id: "u2", Environment: "development", Name: "U Two"},
			"development\x00actor1": {Id: "actor1", Environment: "development", Name: "Actor One"},
		}}
		o, err := e.finish(tx, ct, ev, mapEvent(ct, ev, env))
		if err != nil {
			t.Fatalf("evaluate %s %q: error %v; the fake store never fails, so outcomes must be actions", name, source, err)
		}
		switch o.status {
		case harkv1.ActionStatus_ACTION_STATUS_SKIPPED, harkv1.ActionStatus_ACTION_STATUS_ERROR:
			if o.reason == "" {
				t.Fatalf("%s %q: %v without a reason", name, source, o.status)
			}
			if !utf8.ValidString(o.reason) {
				t.Fatalf("%s %q: reason %q is not valid UTF-8; it is stored in the event's action", name, source, o.reason)
			}
			return
		case harkv1.ActionStatus_ACTION_STATUS_SUCCESS:
		default:
			t.Fatalf("%s %q: status %v", name, source, o.status)
		}

		// A run is to start: it must be well formed and storable.
		if o.reason != "" {
			t.Fatalf("%s %q: SUCCESS with reason %q", name, source, o.reason)
		}
		if n := len(o.recipients); n < 1 || n > MaxRecipients {
			t.Fatalf("%s %q: SUCCESS with %d recipients, want 1 to %d", name, source, n, MaxRecipients)
		}
		seen := map[string]bool{}
		for _, id := range o.recipients {
			if id == "" || seen[id] {
				t.Fatalf("%s %q: recipients %q hold an empty or repeated id", name, source, o.recipients)
			}
			seen[id] = true
		}
		if o.rawData != nil {
			if _, isObject := o.rawData.(map[string]any); !isObject || o.data == nil {
				t.Fatalf("%s %q: SUCCESS with data %#v, want an object or nil", name, source, o.rawData)
			}
		}
		run, err := e.startRun(tx, ev.GetEnvironment(), tr.GetWorkflowKey(), tr.GetId(), ev.GetId(), o)
		var refused *ValidationError
		if errors.As(err, &refused) {
			return // an inline tenant the tenant rules refuse: an ERROR action, nothing written
		}
		if err != nil {
			t.Fatalf("%s %q: the run cannot be stored: %v\n(the commit of every delivery batched with this event would fail: 503)", name, source, err)
		}
		if len(run.GetRecipients()) != len(o.recipients) || run.GetId() == "" || run.GetCursor() == "" {
			t.Fatalf("%s %q: run %v, want the outcome's recipients, an id and a cursor", name, source, run)
		}
		for _, id := range run.GetRecipients() {
			if _, err := tx.User("development", id); err != nil {
				t.Fatalf("%s %q: recipient %q of the run is not a user after the run started", name, source, id)
			}
		}
	})
}
