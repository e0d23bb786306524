package kvstore

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// The keyspace. Every key starts with a one-byte table prefix. Segments
// after it are joined with 0x00, which cannot occur in ids, slugs or keys
// (the engine validates them), so a prefix scan of one parent never runs
// into another. Values are the binary-encoded hark.v1 messages.
//
//	0x01 environment      01 | slug                       → hark.v1.Environment
//	0x02 source           02 | source_id                  → hark.v1.Source (without environments)
//	0x03 source env       03 | source_id 00 env           → hark.v1.SourceEnvironment (without ingest_url)
//	0x04 ingest token     04 | source_id 00 env           → token (raw bytes)
//	0x05 token index      05 | sha256(token)              → source_id 00 env
//	0x06 workflow         06 | key                        → hark.v1.Workflow
//	0x07 (retired)        07                              → was the layout guard; never reused
//	0x10 source event     10 | env 00 event_id            → hark.v1.SourceEvent (TTL: event retention)
//	0x11 event type       11 | env 00 source_id 00 type 00 name → hark.v1.EventType
//	0x12 idempotency key  12 | env 00 source_id 00 type 00 key → expiry (8-byte big-endian Unix ns) | original event id
//	                                                          (TTL: the source environment's window)
//	0x13 user             13 | env 00 user_id             → hark.v1.User
//	0x14 trigger          14 | env 00 trigger_id          → hark.v1.Trigger
//	0x15 workflow run     15 | env 00 run_id              → hark.v1.WorkflowRun (TTL: run retention)
//	0x16 run feed         16 | env 00 cursor (8-byte BE)  → run_id (TTL: run retention)
//	0x17 run cursor       17 | env                        → last cursor (8-byte BE)
//	0x18 API trigger key  18 | env 00 key                 → expiry (8-byte BE ns) | digest len (1) | digest | run_id (TTL 24h)
//	0x19 cancellation     19 | env 00 workflow 00 cancellation_key 00 run_id → empty (TTL: run retention)
//	                         an ACTIVE run with a cancellation key; PutWorkflowRun keeps it
//	0x08 schema version   08                              → version (8-byte BE); see SchemaVersion
//	0x1A destination      1A | env 00 destination_id      → uvarint len | hark.v1.Destination | secrets (outbox.go)
//	0x1B delivery         1B | env 00 delivery_id         → uvarint len | hark.v1.Delivery | hark.v1.WorkflowRun as of the change
//	                                                          (TTL: run retention)
//	0x1C due delivery     1C | next attempt (8-byte BE Unix ns) | env 00 destination_id 00 delivery_id → empty:
//	                                                          the dispatcher's queue
//	0x1D held delivery    1D | env 00 destination_id 00 delivery_id → empty: pending while its destination is
//	                                                          paused or disabled
//	0x1E trigger fired    1E | env 00 trigger_id 00 tenant 00 recipient → run_id: a once-per-recipient
//	                         trigger's recipients (tenant "" for once per recipient); no TTL,
//	                         DeleteTrigger removes them
//	0x20 tenant           20 | env 00 tenant_id           → hark.v1.Tenant
//	0x21 object           21 | env 00 collection 00 object_id → hark.v1.Object
//	0x22 subscription     22 | env 00 collection 00 object_id 00 recipient → hark.v1.Subscription
//	                         object → recipients, in recipient order: the fan-out reads keys only
//	0x23 recipient subs   23 | env 00 recipient 00 collection 00 object_id → empty: recipient → objects,
//	                                                          so a user's deletion finds their subscriptions
//	0x24 audience member  24 | env 00 audience 00 user_id 00 tenant → hark.v1.AudienceMember
//	0x25 user audiences   25 | env 00 user_id 00 audience 00 tenant → empty: user → audiences
//	0x26 node's event type 26 | env 00 source_id 00 type 00 name 00 node → hark.v1.EventType: what one
//	                         node of a shared store added to the event type since 0x11 last took it in
//	                         (PerNode); summed with 0x11 on read
//
// Both index records of a subscription or membership are written and
// deleted in one transaction. Tenant, object and audience ids and
// collections hold no NUL (the engine refuses one); nor do the user ids
// that are subscribed or members, so every segment of those keys ends at
// the next separator. (A membership without a tenant ends in a separator.)
//
// Event ids are lowercase ULIDs behind a fixed prefix, so byte order is time
// order: the log is read newest first by scanning 0x10|env in reverse.
// Tokens are found by the SHA-256 of the token, never by comparing token
// bytes, so lookup time says nothing about how close a guess was.
// Cursors are fixed-width big-endian integers, so byte order is numeric order.
//
// The watch (Store.Watch) reads changes from these keys alone: the tables
// it watches are listed in watched (watch.go).
const (
	tableEnvironment byte = 0x01
	tableSource      byte = 0x02
	tableSourceEnv   byte = 0x03
	tableToken       byte = 0x04
	tableTokenIndex  byte = 0x05
	tableWorkflow    byte = 0x06
	tableSchema      byte = 0x08
	tableEvent       byte = 0x10
	tableEventType   byte = 0x11
	tableIdempotency byte = 0x12
	tableUser        byte = 0x13
	tableTrigger     byte = 0x14
	tableRun         byte = 0x15
	tableRunFeed     byte = 0x16
	tableRunCursor   byte = 0x17
	tableTriggerReq  byte = 0x18
	tableCancelIndex byte = 0x19

	tableDestination  byte = 0x1A
	tableDelivery     byte = 0x1B
	tableDueDelivery  byte = 0x1C
	tableHeldDelivery byte = 0x1D
	tableTriggerFired byte = 0x1E

	tableTenant         byte = 0x20
	tableObject         byte = 0x21
	tableSubscription   byte = 0x22
	tableRecipientSubs  byte = 0x23
	tableAudienceMember byte = 0x24
	tableUserAudiences  byte = 0x25
	tableNodeEventType  byte = 0x26
)

// sep joins a key's segments; see the keyspace.
const sep = 0x00

// SchemaVersion is the keyspace version this package reads and writes. 2
// added the cancellation index (0x19). A backend brings an older store up
// to it before anything reads the store (badgerstore's migrate) and then
// writes it under SchemaKey.
const SchemaVersion = 2

// SchemaKey is the key of the schema version record: the version as an
// 8-byte big-endian integer.
func SchemaKey() []byte { return []byte{tableSchema} }

// RunPrefix is the prefix of every workflow run record, for a migration
// that walks them (see CancellationIndexKey).
func RunPrefix() []byte { return []byte{tableRun} }

func key(table byte, parts ...string) []byte {
	n := len(parts) + 1 // the table, the separators and room for a trailing one
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 1, n)
	k[0] = table
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// under is the prefix of the keys below parts in table: key with a
// trailing separator, so one parent's scan never reaches another's.
func under(table byte, parts ...string) []byte {
	return append(key(table, parts...), sep)
}

func tokenIndexKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return append([]byte{tableTokenIndex}, sum[:]...)
}

func eventTypeKey(sourceID, env, typ, name string) []byte {
	return key(tableEventType, env, sourceID, typ, name)
}

// cancelIndexKey is a run's entry in the cancellation index. A
// cancellation key is a mapped value and may hold a NUL, so one key can
// extend another ("a" and "a\x00b"); CancellableRuns tells them apart by
// the run id at the end, which never holds one.
func cancelIndexKey(env, workflow, cancellationKey, runID string) []byte {
	return key(tableCancelIndex, env, workflow, cancellationKey, runID)
}

func runFeedKey(env string, cursor uint64) []byte {
	return binary.BigEndian.AppendUint64(under(tableRunFeed, env), cursor)
}

func dueKey(at time.Time, env, destination, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{tableDueDelivery}, uint64(at.UnixNano()))
	return append(append(append(append(append(k, env...), sep), destination...), sep), id...)
}

func subscriptionKey(env, collection, objectID, recipient string) []byte {
	return key(tableSubscription, env, collection, objectID, recipient)
}

func recipientSubKey(env, recipient, collection, objectID string) []byte {
	return key(tableRecipientSubs, env, recipient, collection, objectID)
}

func memberKey(env, audience, userID, tenant string) []byte {
	return key(tableAudienceMember, env, audience, userID, tenant)
}

func userAudienceKey(env, userID, audience, tenant string) []byte {
	return key(tableUserAudiences, env, userID, audience, tenant)
}
