package engine

import (
	"context"
	"time"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Store is the state behind the engine. Every method of Tx sees a consistent
// snapshot; Update commits all of a function's writes at once, durably, or
// none of them. Getters return a *NotFoundError when the record is absent.
//
// The store never reads a clock: records that expire are given their
// expiry as an absolute time from the engine's clock (Config.Now), so tests
// that move that clock move every expiry with it. A store may keep a record
// past its expiry (Badger removes expired entries by the wall clock); the
// engine compares expiry times itself where it matters.
//
// Records are the hark.v1 messages. Derived fields are not stored: a
// SourceEnvironment is stored without ingest_url (the engine builds it from
// the token and the public URL), and a Source without its environments.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it. It may run
	// fn more than once when a concurrent write conflicts.
	Update(ctx context.Context, fn func(Tx) error) error
	// Watch registers fn for every change the store commits to watched
	// records (see Change) and returns a function that unregisters it.
	//
	// The engine's in-memory state — the trigger registry, the catalog
	// cache, the run watchers' wake-ups — follows the store through Watch,
	// never through its own writes: on a store shared by several nodes a
	// change committed by another node takes effect here the same way.
	// Changes committed by an Update of this process reach fn before that
	// Update returns, so a caller reads its own writes; those of other
	// nodes arrive as the backend delivers them. fn may be called from
	// several goroutines at once and must not call Update.
	Watch(fn func([]Change)) (stop func())
	// Close flushes and releases the store.
	Close() error
}

// EventFollower is a Store that other nodes share and that reports the
// events they log, so that a live tail (WatchSourceEvents) on any node
// shows every node's events. Refused deliveries are not in the store: a
// tail shows those of its own node.
type EventFollower interface {
	// FollowEvents calls fn with the environment and id of each event
	// another node logs from now on, until stop is called; a store no
	// other node writes never calls it. fn is called from one goroutine,
	// in the order the store keeps the events.
	FollowEvents(fn func(env, id string)) (stop func())
}

// Change names a committed change to a watched record; a watcher reads the
// record again (or everything, for ChangeReset) rather than trusting a
// value carried along, so changes applied out of order converge on what is
// stored.
type Change struct {
	Kind ChangeKind
	// Environment and ID name the record where Kind has one: a trigger's
	// environment and id, the environment whose run feed grew.
	Environment, ID string
}

// ChangeKind is what a Change is about.
type ChangeKind uint8

const (
	// ChangeCatalog: an environment, source, source environment, token,
	// workflow or destination was written or deleted.
	ChangeCatalog ChangeKind = iota + 1
	// ChangeLayout: an environment or a source was written. It is also a
	// ChangeCatalog; a watcher checks that every source has a
	// configuration in every environment (Engine.completeLayout).
	ChangeLayout
	// ChangeTrigger: the trigger Environment/ID was written or deleted.
	ChangeTrigger
	// ChangeRuns: Environment's run feed has new entries.
	ChangeRuns
	// ChangeReset: the watch may have missed changes (a shared backend's
	// watch reconnected): reload everything watched.
	ChangeReset
)

// Tx reads and writes records inside one transaction. List methods return
// records whose key sorts after `after` (empty: from the start), at most
// limit of them.
type Tx interface {
	Environment(slug string) (*harkv1.Environment, error)
	Environments(after string, limit int) ([]*harkv1.Environment, error)
	PutEnvironment(env *harkv1.Environment) error

	Source(id string) (*harkv1.Source, error)
	Sources(after string, limit int) ([]*harkv1.Source, error)
	PutSource(src *harkv1.Source) error
	// DeleteSource removes a source with its environments and tokens.
	DeleteSource(id string) error

	SourceEnvironment(sourceID, env string) (*harkv1.SourceEnvironment, error)
	// SourceEnvironments returns a source's configurations ordered by
	// environment slug.
	SourceEnvironments(sourceID string) ([]*harkv1.SourceEnvironment, error)
	PutSourceEnvironment(se *harkv1.SourceEnvironment) error

	// IngestToken returns the secret token of a source environment.
	IngestToken(sourceID, env string) (string, error)
	// SetIngestToken sets a source environment's token; the previous token
	// stops resolving in the same commit.
	SetIngestToken(sourceID, env, token string) error
	// ResolveIngestToken finds the source environment a token belongs to.
	ResolveIngestToken(token string) (sourceID, env string, err error)

	Workflow(key string) (*harkv1.Workflow, error)
	Workflows(after string, limit int) ([]*harkv1.Workflow, error)
	PutWorkflow(wf *harkv1.Workflow) error
	DeleteWorkflow(key string) error

	// PutSourceEvent logs an event until expiresAt: meta is the binary
	// encoding of the hark.v1.SourceEvent without event, data and traits
	// (the ingest path encodes most of it before the commit; see
	// encodeFixed), raw the event's JSON as received, which the log keeps.
	PutSourceEvent(env, id string, meta []byte, raw EventJSON, expiresAt time.Time) error
	// SourceEvent returns a logged event with event, data and traits
	// decoded from its JSON (StructFromJSON).
	SourceEvent(env, id string) (*harkv1.SourceEvent, error)
	// SourceEvents returns an environment's events newest first, starting
	// below the event id `before` (empty: the newest), those that match
	// the filter, at most limit of them, reading at most scanLimit entries.
	// The filter reads only fields outside the event's JSON parts, so a
	// store decodes those for matching events only.
	// lastScanned is the id of the last entry read when the scan limit cut
	// the walk short, else "".
	SourceEvents(env, before string, limit, scanLimit int, filter EventFilter) (events []*harkv1.SourceEvent, lastScanned string, err error)

	EventType(sourceID, env, typ, name string) (*harkv1.EventType, error)
	// EventTypes lists a source environment's event types ordered by type,
	// then name; after is "<type>\x00<name>".
	EventTypes(sourceID, env, after string, limit int) ([]*harkv1.EventType, error)
	// CountEventType adds add's count to its event type's (creating it),
	// and widens its first and last times to add's.
	CountEventType(add *harkv1.EventType) error

	User(env, id string) (*harkv1.User, error)
	Users(env, after string, limit int) ([]*harkv1.User, error)
	PutUser(u *harkv1.User) error
	DeleteUser(env, id string) error

	Tenant(env, id string) (*harkv1.Tenant, error)
	// Tenants lists an environment's tenants ordered by id.
	Tenants(env, after string, limit int) ([]*harkv1.Tenant, error)
	PutTenant(t *harkv1.Tenant) error
	DeleteTenant(env, id string) error

	Object(env, collection, id string) (*harkv1.Object, error)
	// Objects lists one collection's objects ordered by id.
	Objects(env, collection, after string, limit int) ([]*harkv1.Object, error)
	PutObject(o *harkv1.Object) error
	// DeleteObject removes the object record only; the engine removes its
	// subscriptions (deleteObject) in the same transaction.
	DeleteObject(env, collection, id string) error

	// Subscription returns one recipient's subscription to an object.
	Subscription(env, collection, objectID, recipient string) (*harkv1.Subscription, error)
	// PutSubscription stores a subscription under both of its indexes:
	// object → recipient and recipient → object.
	PutSubscription(s *harkv1.Subscription) error
	// DeleteSubscription removes a subscription from both indexes; a
	// missing one is no error.
	DeleteSubscription(env, collection, objectID, recipient string) error
	// Subscriptions lists an object's subscriptions ordered by recipient.
	Subscriptions(env, collection, objectID, after string, limit int) ([]*harkv1.Subscription, error)
	// Subscribers lists the recipient ids of an object's subscriptions in
	// order, without reading the records: the fan-out path.
	Subscribers(env, collection, objectID, after string, limit int) ([]string, error)
	// RecipientSubscriptions lists a recipient's subscriptions ordered by
	// collection, then object id; after is "<collection>\x00<object id>".
	RecipientSubscriptions(env, recipient, after string, limit int) ([]*harkv1.Subscription, error)

	AudienceMember(env, audience, userID, tenant string) (*harkv1.AudienceMember, error)
	// PutAudienceMember stores a membership under both of its indexes:
	// audience → user and user → audience.
	PutAudienceMember(m *harkv1.AudienceMember) error
	// DeleteAudienceMember removes a membership from both indexes; a
	// missing one is no error.
	DeleteAudienceMember(env, audience, userID, tenant string) error
	// AudienceMembers lists an audience's members ordered by user id, then
	// tenant; after is "<user id>\x00<tenant>".
	AudienceMembers(env, audience, after string, limit int) ([]*harkv1.AudienceMember, error)
	// Audiences lists the keys of env's audiences that have a member, in
	// order, after the key after.
	Audiences(env, after string, limit int) ([]string, error)
	// UserAudienceMemberships lists a user's memberships ordered by
	// audience, then tenant; after is "<audience>\x00<tenant>".
	UserAudienceMemberships(env, userID, after string, limit int) ([]*harkv1.AudienceMember, error)

	// Prefetch says which records the transaction is about to read, so a
	// store whose every read is a round trip can read them in one; a store
	// whose reads are local ignores it. Reads stay as they are: a record
	// prefetched and then changed by another commit fails this one's commit
	// as any read record does.
	Prefetch(records Prefetch) error

	// IdempotencyRecord returns the event that first used a key (scoped by
	// environment, source and event type) and when the record expires. The
	// store may return a record past its expiry until its TTL removes it;
	// the engine compares expiresAt with its own clock.
	IdempotencyRecord(env, sourceID, typ, key string) (originalID string, expiresAt time.Time, err error)
	// PutIdempotencyRecord records that originalID used the key, until
	// expiresAt.
	PutIdempotencyRecord(env, sourceID, typ, key, originalID string, expiresAt time.Time) error

	Trigger(env, id string) (*harkv1.Trigger, error)
	// Triggers lists an environment's triggers in creation (id) order.
	Triggers(env, after string, limit int) ([]*harkv1.Trigger, error)
	PutTrigger(t *harkv1.Trigger) error
	DeleteTrigger(env, id string) error

	WorkflowRun(env, id string) (*harkv1.WorkflowRun, error)
	// PutWorkflowRun stores a run until expiresAt, and keeps the
	// cancellation index: an ACTIVE run with a cancellation key is listed
	// under (workflow, cancellation key) until it is stored with another
	// status.
	PutWorkflowRun(run *harkv1.WorkflowRun, expiresAt time.Time) error
	// CancellableRuns lists the ids of the ACTIVE runs of a workflow with
	// the cancellation key, in id order after `after`, at most limit.
	CancellableRuns(env, workflow, cancellationKey, after string, limit int) ([]string, error)
	// WorkflowRuns lists runs newest first, as SourceEvents does events.
	WorkflowRuns(env, before string, limit, scanLimit int, filter RunFilter) (runs []*harkv1.WorkflowRun, lastScanned string, err error)
	// AppendRunFeed records that the run changed, until expiresAt, at a
	// new feed position, whose cursor it returns. The feed is a log in
	// commit order: a reader that read up to a cursor and reads on after it
	// finds every entry committed since, never one committed before. A
	// cursor is unique in its environment's feed; on one node cursors
	// increase, but a store shared by several nodes issues each node's from
	// a block of its own (kvstore.CursorIssuer), so they need not increase
	// along the feed.
	AppendRunFeed(env, runID string, expiresAt time.Time) (cursor uint64, err error)
	// RunFeed returns up to limit feed entries after the cursor's (0: from
	// the start), in the feed's order. After a cursor whose entry is gone
	// (expired), a store either reads on from the cursor's place or from
	// the oldest entry it keeps; either way nothing committed after it is
	// missed.
	RunFeed(env string, after uint64, limit int) ([]RunFeedEntry, error)

	// Destination returns a destination with its signing secrets.
	Destination(env, id string) (*harkv1.Destination, delivery.Secrets, error)
	// Destinations lists an environment's destinations in creation (id)
	// order.
	Destinations(env, after string, limit int) ([]*harkv1.Destination, error)
	// PutDestination stores a destination (its signing_secret field is not
	// stored: secrets are) and its secrets.
	PutDestination(d *harkv1.Destination, secrets delivery.Secrets) error
	// DeleteDestination removes a destination and its held deliveries.
	DeleteDestination(env, id string) error

	// Delivery returns an outbox record: the delivery and the run as of
	// the change it carries.
	Delivery(env, id string) (*harkv1.Delivery, *harkv1.WorkflowRun, error)
	// PutDelivery stores a delivery until expiresAt, and keeps its place.
	// With run (the run as of the change it carries) it writes a new
	// delivery; without, it updates a stored one, keeping its run. A PENDING
	// delivery with next_attempt_at is due then (DueDeliveries); a PENDING
	// one without is held for its destination (HeldDeliveries); others are
	// done.
	PutDelivery(d *harkv1.Delivery, run *harkv1.WorkflowRun, expiresAt time.Time) error
	// Deliveries lists an environment's deliveries newest first, as
	// SourceEvents does events.
	Deliveries(env, before string, limit, scanLimit int, filter DeliveryFilter) (deliveries []*harkv1.Delivery, lastScanned string, err error)
	// DueDeliveries lists deliveries of every environment due at or
	// before until, earliest first, after the position `after` (nil: from
	// the start), at most limit.
	DueDeliveries(until time.Time, after *DueDelivery, limit int) ([]DueDelivery, error)
	// HeldDeliveries lists the ids of a destination's held deliveries, in
	// id order after `after`, at most limit.
	HeldDeliveries(env, destinationID, after string, limit int) ([]string, error)
	// OutboxDepth counts the due deliveries (sent or waiting for a retry)
	// and returns when the oldest of them was created. It reads the whole
	// queue: for metrics.
	OutboxDepth() (pending int, oldest time.Time, err error)

	// TriggerRequest returns what an API trigger with an Idempotency-Key
	// answered: the request's digest and the run it started.
	TriggerRequest(env, key string) (digest []byte, runID string, expiresAt time.Time, err error)
	PutTriggerRequest(env, key string, digest []byte, runID string, expiresAt time.Time) error

	// TriggerFired returns the run a trigger with a once-per-recipient
	// frequency started for a recipient (and tenant, "" for none): a
	// *NotFoundError when it never fired for them.
	TriggerFired(env, triggerID, tenant, recipient string) (runID string, err error)
	// PutTriggerFired records that the trigger fired for the recipient
	// (and tenant). The records live as long as the trigger: DeleteTrigger
	// removes them.
	PutTriggerFired(env, triggerID, tenant, recipient, runID string) error
}

// EventJSON is an event's JSON as the source sent it: the original event
// and the parts the plugin picked out of it, each a JSON object or nil.
type EventJSON struct {
	Event, Data, Traits []byte
}

// DueDelivery is a delivery in the dispatcher's queue: its place in it
// (Due, then the rest) and what the dispatcher needs to hand it to its
// destination's senders without reading it.
type DueDelivery struct {
	Due                            time.Time
	Environment, DestinationID, ID string
}

// RunFeedEntry is one change of a run in an environment's feed.
type RunFeedEntry struct {
	Cursor uint64
	RunID  string
}

// The filters of the newest-first scans are values, not callbacks, so a
// backend can take them to where the records are (a subject filter, an
// index) instead of shipping every record to be judged. An empty field
// matches everything.

// EventFilter selects logged events.
type EventFilter struct {
	SourceID, Type, Name, UserID string
	Status                       harkv1.SourceEventStatus
}

// Match reports whether ev passes the filter.
func (f EventFilter) Match(ev *harkv1.SourceEvent) bool {
	return (f.SourceID == "" || ev.GetSourceId() == f.SourceID) &&
		(f.Type == "" || ev.GetType() == f.Type) &&
		(f.Name == "" || ev.GetName() == f.Name) &&
		(f.Status == harkv1.SourceEventStatus_SOURCE_EVENT_STATUS_UNSPECIFIED || ev.GetStatus() == f.Status) &&
		(f.UserID == "" || ev.GetUserId() == f.UserID)
}

// RunFilter selects workflow runs.
type RunFilter struct {
	WorkflowKey, TriggerID, SourceEventID string
}

// Match reports whether r passes the filter.
func (f RunFilter) Match(r *harkv1.WorkflowRun) bool {
	return (f.WorkflowKey == "" || r.GetWorkflowKey() == f.WorkflowKey) &&
		(f.TriggerID == "" || r.GetTriggerId() == f.TriggerID) &&
		(f.SourceEventID == "" || r.GetSourceEventId() == f.SourceEventID)
}

// DeliveryFilter selects outbox deliveries.
type DeliveryFilter struct {
	DestinationID, WorkflowRunID string
	Status                       harkv1.DeliveryStatus
}

// Match reports whether d passes the filter.
func (f DeliveryFilter) Match(d *harkv1.Delivery) bool {
	return (f.DestinationID == "" || d.GetDestinationId() == f.DestinationID) &&
		(f.WorkflowRunID == "" || d.GetWorkflowRunId() == f.WorkflowRunID) &&
		(f.Status == harkv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED || d.GetStatus() == f.Status)
}

// Prefetch names records a transaction is about to read (Tx.Prefetch): the
// ingest commit's idempotency records, users and event types, and the
// environments whose run feed it may append to.
type Prefetch struct {
	Idempotency []IdempotencyKey
	Users       []UserKey
	EventTypes  []EventTypeKey
	RunFeeds    []string
}

// EventTypeKey names an event type of a source environment.
type EventTypeKey struct{ SourceID, Environment, Type, Name string }

// IdempotencyKey names an idempotency record.
type IdempotencyKey struct{ Environment, SourceID, Type, Key string }

// UserKey names a user.
type UserKey struct{ Environment, ID string }
