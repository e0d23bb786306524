// Package engine is hark's core: the resources users manage (environments,
// sources, workflows, triggers, users; tenants, objects with their
// subscriptions and audiences, whose rules resources.go states) and the
// pipeline that turns received events into workflow runs.
//
// The engine speaks in the generated hark.v1 message types, which are the
// one definition of each resource; the server's handlers only convert
// transport details and map the engine's errors (see errors.go) to status
// codes. State lives behind the Store interface, so the embedded Badger store
// (package badgerstore) can later be joined by a distributed one.
//
// Engine methods are safe for concurrent use.
package engine
