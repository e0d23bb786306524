package kvstore

import (
	"bytes"

	"github.com/harkhq/hark/engine"
)

// watched are the tables whose writes are engine.Changes, by their first
// byte; changeOf says which change each is.
var watched = [][]byte{
	{tableEnvironment}, {tableSource}, {tableSourceEnv}, {tableToken}, {tableTokenIndex},
	{tableWorkflow}, {tableTrigger}, {tableRunFeed}, {tableDestination},
}

// Watch implements engine.Store. The changes come from the keys a commit
// wrote (DB.Watch), not from the Tx methods that wrote them, so a shared
// backend reports another node's commits exactly as this node's: it sees
// their keys, never their calls.
func (s *Store) Watch(fn func([]engine.Change)) (stop func()) {
	return s.db.Watch(watched, func(keys [][]byte, reset bool) {
		if reset {
			fn([]engine.Change{{Kind: engine.ChangeReset}})
			return
		}
		if changes := changesOf(keys); len(changes) > 0 {
			fn(changes)
		}
	})
}

// FollowEvents implements engine.EventFollower with the DB's
// OthersWatcher; on a DB without one (a store of one process) it reports
// nothing.
func (s *Store) FollowEvents(fn func(env, id string)) (stop func()) {
	ow, ok := s.db.(OthersWatcher)
	if !ok {
		return func() {}
	}
	return ow.WatchOthers([][]byte{{tableEvent}}, func(keys [][]byte, _ bool) {
		for _, k := range keys {
			// An event's key: table, env 00 id.
			if env, id, ok := bytes.Cut(k[1:], []byte{sep}); ok {
				fn(string(env), string(id))
			}
		}
	})
}

// changesOf turns one commit's written keys into its changes, each once.
func changesOf(keys [][]byte) []engine.Change {
	var out []engine.Change
	var seen map[engine.Change]bool // past a few changes, instead of a linear search
	for _, k := range keys {
		c, ok := changeOf(k)
		if !ok {
			continue
		}
		if seen == nil && len(out) < 8 {
			if !containsChange(out, c) {
				out = append(out, c)
			}
			continue
		}
		if seen == nil {
			seen = make(map[engine.Change]bool, 2*len(out))
			for _, o := range out {
				seen[o] = true
			}
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func containsChange(cs []engine.Change, c engine.Change) bool {
	for _, o := range cs {
		if o == c {
			return true
		}
	}
	return false
}

// changeOf is the change a write to k is (see the keyspace), if any.
func changeOf(k []byte) (engine.Change, bool) {
	if len(k) == 0 {
		return engine.Change{}, false
	}
	rest := k[1:]
	// first and second are a two-segment key's segments.
	first, second, _ := bytes.Cut(rest, []byte{sep})
	switch k[0] {
	case tableEnvironment:
		return engine.Change{Kind: engine.ChangeLayout, Environment: string(rest)}, true
	case tableSource:
		return engine.Change{Kind: engine.ChangeLayout, ID: string(rest)}, true
	case tableSourceEnv, tableToken: // source_id 00 env
		return engine.Change{Kind: engine.ChangeCatalog, Environment: string(second), ID: string(first)}, true
	case tableTokenIndex: // a token's hash names nothing
		return engine.Change{Kind: engine.ChangeCatalog}, true
	case tableWorkflow:
		return engine.Change{Kind: engine.ChangeCatalog, ID: string(rest)}, true
	case tableDestination: // env 00 destination_id
		return engine.Change{Kind: engine.ChangeCatalog, Environment: string(first), ID: string(second)}, true
	case tableTrigger: // env 00 trigger_id
		return engine.Change{Kind: engine.ChangeTrigger, Environment: string(first), ID: string(second)}, true
	case tableRunFeed: // env 00 cursor
		return engine.Change{Kind: engine.ChangeRuns, Environment: string(first)}, true
	}
	return engine.Change{}, false
}
