// Package natsstore keeps hark's state on a NATS JetStream cluster, so that
// any number of hark nodes share it (cluster mode, DESIGN §13). DB is the
// kvstore.DB the engine's tables run on (see engine/kvstore).
//
// Known limits of this first version: a scan reads every key under its
// prefix (an ordered consumer delivering the last message per subject),
// so listing pages of very large tables — the event log, the users of an
// environment with millions of them — costs the table, not the page; and
// every read of a key is one request to the stream's leader.
package natsstore
