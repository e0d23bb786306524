package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// recordKind is one kind of record for testReadYourWrites: how to write it,
// read it back (nil when it is there and as written, a *NotFoundError when
// absent, another error when it differs) and delete it.
type recordKind struct {
	name string
	put  func(engine.Tx) error
	get  func(engine.Tx) error
	// del deletes the record; nil for kinds without a delete of their own.
	del func(engine.Tx) error
	// missingDeleteOK: deleting an absent record is documented as no error.
	missingDeleteOK bool
}

// same compares a record read back with the one wanted.
func same(what string, got, want proto.Message) error {
	if !proto.Equal(got, want) {
		return fmt.Errorf("%s: read %v, want %v", what, got, want)
	}
	return nil
}

// recordKinds is one record of every kind Tx stores, in environment "dev".
// expiresAt is whole seconds so a backend may keep expiries that precisely.
func recordKinds(expiresAt time.Time) []recordKind {
	const env = "dev"
	envRec := &harkv1.Environment{Slug: env, Name: "Development"}
	src := &harkv1.Source{Id: "src", Name: "Segment", Type: "segment",
		Environments: []*harkv1.SourceEnvironment{{SourceId: "src", Environment: env}}}
	se := &harkv1.SourceEnvironment{SourceId: "src", Environment: env, IngestUrl: "https://hooks.example/x", IdempotencyEnabled: true}
	wf := &harkv1.Workflow{Key: "welcome", Name: "Welcome", Active: true}
	et := &harkv1.EventType{SourceId: "src", Environment: env, Type: "track", Name: "Signed Up", Count: 3}
	user := &harkv1.User{Environment: env, Id: "u1", Name: "Ada", Email: "ada@example.com"}
	tenant := &harkv1.Tenant{Environment: env, Id: "acme", Name: "Acme"}
	obj := &harkv1.Object{Environment: env, Collection: "projects", Id: "p1"}
	sub := &harkv1.Subscription{Environment: env, Collection: "projects", ObjectId: "p1", Recipient: "u1"}
	member := &harkv1.AudienceMember{Environment: env, AudienceKey: "beta", UserId: "u1", Tenant: "acme"}
	trg := &harkv1.Trigger{Id: "trg1", Environment: env, WorkflowKey: "welcome", SourceId: "src", EventType: "track", Event: "Signed Up"}
	run := &harkv1.WorkflowRun{Environment: env, Id: "run1", WorkflowKey: "welcome", Recipients: []string{"u1"}, Status: harkv1.WorkflowRunStatus_WORKFLOW_RUN_STATUS_ACTIVE}
	dest := &harkv1.Destination{Environment: env, Id: "dst1", Name: "Hook", Type: "webhook", Url: "https://example.com/hook", SigningSecret: "whsec_current"}
	secrets := delivery.Secrets{Current: "whsec_current", Previous: "whsec_previous", PreviousExpiresAt: expiresAt}
	dlv := &harkv1.Delivery{Environment: env, Id: "dlv1", DestinationId: "dst1", WorkflowRunId: "run1", Status: harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED, AttemptCount: 1}
	digest := []byte{1, 2, 3, 4}

	return []recordKind{
		{name: "environment",
			put: func(tx engine.Tx) error { return tx.PutEnvironment(envRec) },
			get: func(tx engine.Tx) error {
				got, err := tx.Environment(env)
				if err != nil {
					return err
				}
				return same("environment", got, envRec)
			}},
		{name: "source",
			put: func(tx engine.Tx) error { return tx.PutSource(src) },
			get: func(tx engine.Tx) error {
				got, err := tx.Source("src")
				if err != nil {
					return err
				}
				// A Source is stored without its environments.
				want := proto.CloneOf(src)
				want.Environments = nil
				return same("source", got, want)
			},
			del: func(tx engine.Tx) error { return tx.DeleteSource("src") }},
		{name: "source environment",
			put: func(tx engine.Tx) error { return tx.PutSourceEnvironment(se) },
			get: func(tx engine.Tx) error {
				got, err := tx.SourceEnvironment("src", env)
				if err != nil {
					return err
				}
				// A SourceEnvironment is stored without ingest_url.
				want := proto.CloneOf(se)
				want.IngestUrl = ""
				return same("source environment", got, want)
			}},
		{name: "ingest token",
			put: func(tx engine.Tx) error { return tx.SetIngestToken("src", env, "tok_1") },
			get: func(tx engine.Tx) error {
				tok, err := tx.IngestToken("src", env)
				srcID, e, rerr := tx.ResolveIngestToken("tok_1")
				switch {
				case err != nil && notFound(err):
					if rerr == nil || !notFound(rerr) {
						return fmt.Errorf("IngestToken is not found but ResolveIngestToken returns %q, %q, %v", srcID, e, rerr)
					}
					return err
				case err != nil:
					return err
				case rerr != nil:
					return fmt.Errorf("ResolveIngestToken of a stored token: %w", rerr)
				case tok != "tok_1" || srcID != "src" || e != env:
					return fmt.Errorf("token %q resolves to %q/%q, want tok_1 → src/%s", tok, srcID, e, env)
				}
				return nil
			}},
		{name: "workflow",
			put: func(tx engine.Tx) error { return tx.PutWorkflow(wf) },
			get: func(tx engine.Tx) error {
				got, err := tx.Workflow("welcome")
				if err != nil {
					return err
				}
				return same("workflow", got, wf)
			},
			del: func(tx engine.Tx) error { return tx.DeleteWorkflow("welcome") }},
		{name: "source event",
			put: func(tx engine.Tx) error {
				meta, err := proto.Marshal(&harkv1.SourceEvent{Id: "evt_1", SourceId: "src", Environment: env, Type: "track", Name: "Signed Up"})
				if err != nil {
					return err
				}
				raw := engine.EventJSON{Event: []byte(`{"event":"Signed Up"}`), Data: []byte(`{"plan":"pro"}`)}
				return tx.PutSourceEvent(env, "evt_1", meta, raw, expiresAt)
			},
			get: func(tx engine.Tx) error {
				got, err := tx.SourceEvent(env, "evt_1")
				if err != nil {
					return err
				}
				if got.GetId() != "evt_1" || got.GetType() != "track" || got.GetName() != "Signed Up" ||
					got.GetData().GetFields()["plan"].GetStringValue() != "pro" ||
					got.GetEvent().GetFields()["event"].GetStringValue() != "Signed Up" || got.GetTraits() != nil {
					return fmt.Errorf("source event: read %v, want evt_1 track \"Signed Up\" with its event and data", got)
				}
				return nil
			}},
		{name: "event type",
			put: func(tx engine.Tx) error { return tx.CountEventType(et) },
			get: func(tx engine.Tx) error {
				got, err := tx.EventType("src", env, "track", "Signed Up")
				if err != nil {
					return err
				}
				return same("event type", got, et)
			}},
		{name: "user",
			put: func(tx engine.Tx) error { return tx.PutUser(user) },
			get: func(tx engine.Tx) error {
				got, err := tx.User(env, "u1")
				if err != nil {
					return err
				}
				return same("user", got, user)
			},
			del: func(tx engine.Tx) error { return tx.DeleteUser(env, "u1") }},
		{name: "tenant",
			put: func(tx engine.Tx) error { return tx.PutTenant(tenant) },
			get: func(tx engine.Tx) error {
				got, err := tx.Tenant(env, "acme")
				if err != nil {
					return err
				}
				return same("tenant", got, tenant)
			},
			del: func(tx engine.Tx) error { return tx.DeleteTenant(env, "acme") }},
		{name: "object",
			put: func(tx engine.Tx) error { return tx.PutObject(obj) },
			get: func(tx engine.Tx) error {
				got, err := tx.Object(env, "projects", "p1")
				if err != nil {
					return err
				}
				return same("object", got, obj)
			},
			del: func(tx engine.Tx) error { return tx.DeleteObject(env, "projects", "p1") }},
		{name: "subscription",
			put: func(tx engine.Tx) error { return tx.PutSubscription(sub) },
			get: func(tx engine.Tx) error {
				got, err := tx.Subscription(env, "projects", "p1", "u1")
				if err != nil {
					return err
				}
				return same("subscription", got, sub)
			},
			del:             func(tx engine.Tx) error { return tx.DeleteSubscription(env, "projects", "p1", "u1") },
			missingDeleteOK: true},
		{name: "audience member",
			put: func(tx engine.Tx) error { return tx.PutAudienceMember(member) },
			get: func(tx engine.Tx) error {
				got, err := tx.AudienceMember(env, "beta", "u1", "acme")
				if err != nil {
					return err
				}
				return same("audience member", got, member)
			},
			del:             func(tx engine.Tx) error { return tx.DeleteAudienceMember(env, "beta", "u1", "acme") },
			missingDeleteOK: true},
		{name: "idempotency record",
			put: func(tx engine.Tx) error {
				return tx.PutIdempotencyRecord(env, "src", "track", "key1", "evt_1", expiresAt)
			},
			get: func(tx engine.Tx) error {
				id, exp, err := tx.IdempotencyRecord(env, "src", "track", "key1")
				if err != nil {
					return err
				}
				if id != "evt_1" || !exp.Equal(expiresAt) {
					return fmt.Errorf("idempotency record: read %q until %v, want evt_1 until %v", id, exp, expiresAt)
				}
				return nil
			}},
		{name: "trigger",
			put: func(tx engine.Tx) error { return tx.PutTrigger(trg) },
			get: func(tx engine.Tx) error {
				got, err := tx.Trigger(env, "trg1")
				if err != nil {
					return err
				}
				return same("trigger", got, trg)
			},
			del: func(tx engine.Tx) error { return tx.DeleteTrigger(env, "trg1") }},
		{name: "trigger fired",
			put: func(tx engine.Tx) error {
				// Trigger trg10's record, beside trg1's, outlives
				// DeleteTrigger(trg1).
				if err := tx.PutTriggerFired(env, "trg10", "acme", "u1", "run10"); err != nil {
					return err
				}
				return tx.PutTriggerFired(env, "trg1", "acme", "u1", "run1")
			},
			get: func(tx engine.Tx) error {
				got, err := tx.TriggerFired(env, "trg1", "acme", "u1")
				if err != nil {
					return err
				}
				if got != "run1" {
					return fmt.Errorf("trigger fired: read %q, want run1", got)
				}
				return nil
			}},
		{name: "workflow run",
			put: func(tx engine.Tx) error { return tx.PutWorkflowRun(run, expiresAt) },
			get: func(tx engine.Tx) error {
				got, err := tx.WorkflowRun(env, "run1")
				if err != nil {
					return err
				}
				return same("workflow run", got, run)
			}},
		{name: "destination",
			put: func(tx engine.Tx) error { return tx.PutDestination(dest, secrets) },
			get: func(tx engine.Tx) error {
				got, gotSecrets, err := tx.Destination(env, "dst1")
				if err != nil {
					return err
				}
				if gotSecrets.Current != secrets.Current || gotSecrets.Previous != secrets.Previous || !gotSecrets.PreviousExpiresAt.Equal(secrets.PreviousExpiresAt) {
					return fmt.Errorf("destination secrets: read %+v, want %+v", gotSecrets, secrets)
				}
				// signing_secret is not stored: the secrets are.
				want := proto.CloneOf(dest)
				want.SigningSecret = ""
				return same("destination", got, want)
			},
			del: func(tx engine.Tx) error { return tx.DeleteDestination(env, "dst1") }},
		{name: "delivery",
			put: func(tx engine.Tx) error { return tx.PutDelivery(dlv, run, expiresAt) },
			get: func(tx engine.Tx) error {
				got, gotRun, err := tx.Delivery(env, "dlv1")
				if err != nil {
					return err
				}
				if err := same("delivery", got, dlv); err != nil {
					return err
				}
				return same("delivery's run", gotRun, run)
			}},
		{name: "trigger request",
			put: func(tx engine.Tx) error { return tx.PutTriggerRequest(env, "idem1", digest, "run1", expiresAt) },
			get: func(tx engine.Tx) error {
				gotDigest, runID, exp, err := tx.TriggerRequest(env, "idem1")
				if err != nil {
					return err
				}
				if !bytes.Equal(gotDigest, digest) || runID != "run1" || !exp.Equal(expiresAt) {
					return fmt.Errorf("trigger request: read %x %q until %v, want %x run1 until %v", gotDigest, runID, exp, digest, expiresAt)
				}
				return nil
			}},
	}
}

// testReadYourWrites: every getter reports an absent record as a
// *NotFoundError, an Update reads its own writes, a commit makes them
// visible, and deletes are visible at once.
func testReadYourWrites(t *testing.T, open opener) {
	s := open(t)
	kinds := recordKinds(time.Now().Add(time.Hour).Truncate(time.Second))

	view(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if err := checkNotFound(k.name+" in an empty store", k.get(tx)); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	update(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if err := k.put(tx); err != nil {
				return fmt.Errorf("put %s: %w", k.name, err)
			}
			if err := k.get(tx); err != nil {
				t.Errorf("%s, read in the Update that wrote it: %v", k.name, err)
			}
		}
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if err := k.get(tx); err != nil {
				t.Errorf("%s after the commit: %v", k.name, err)
			}
		}
		return nil
	})

	// Deletes, seen inside their Update and after it. DeleteTrigger takes
	// the trigger's fired records with it.
	gone := func(tx engine.Tx, when string) {
		for _, k := range kinds {
			if k.del != nil {
				if err := checkNotFound(k.name+" "+when+" its delete", k.get(tx)); err != nil {
					t.Error(err)
				}
			}
		}
		_, err := tx.TriggerFired("dev", "trg1", "acme", "u1")
		if err := checkNotFound("trigger fired "+when+" DeleteTrigger", err); err != nil {
			t.Error(err)
		}
		if run, err := tx.TriggerFired("dev", "trg10", "acme", "u1"); err != nil || run != "run10" {
			t.Errorf("trigger trg10's fired record %s DeleteTrigger(trg1): %q, %v; want run10", when, run, err)
		}
	}
	update(t, s, func(tx engine.Tx) error {
		for _, k := range kinds {
			if k.del != nil {
				if err := k.del(tx); err != nil {
					return fmt.Errorf("delete %s: %w", k.name, err)
				}
			}
		}
		gone(tx, "in the Update of")
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		gone(tx, "after the commit of")
		return nil
	})

	for _, k := range kinds {
		if !k.missingDeleteOK {
			continue
		}
		if err := s.Update(t.Context(), k.del); err != nil {
			t.Errorf("deleting a missing %s: %v, want no error", k.name, err)
		}
	}
}
