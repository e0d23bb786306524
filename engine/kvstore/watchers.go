package kvstore

import (
	"bytes"
	"slices"
	"sync"
)

// Watchers is the registry of a DB's Watch callers and the report of this
// process's commits to them: every backend keeps one, and a shared backend
// adds what it hears of other processes' commits itself. The zero value is
// ready; it is safe for concurrent use.
type Watchers struct {
	mu   sync.Mutex
	byID map[int]registration
	next int
}

type registration struct {
	prefixes [][]byte
	fn       func(keys [][]byte, reset bool)
}

// Add registers fn for the keys under prefixes; remove unregisters it.
func (w *Watchers) Add(prefixes [][]byte, fn func(keys [][]byte, reset bool)) (remove func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byID == nil {
		w.byID = map[int]registration{}
	}
	w.next++
	id := w.next
	w.byID[id] = registration{prefixes: prefixes, fn: fn}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.byID, id)
	}
}

// Notify reports one commit's written keys: each watcher gets those under
// its prefixes, if any. It calls the watchers without holding its lock.
func (w *Watchers) Notify(keys [][]byte) {
	if len(keys) == 0 {
		return
	}
	w.mu.Lock()
	regs := make([]registration, 0, len(w.byID))
	for _, r := range w.byID {
		regs = append(regs, r)
	}
	w.mu.Unlock()
	for _, r := range regs {
		var matched [][]byte
		for _, k := range keys {
			if Under(r.prefixes, k) {
				matched = append(matched, k)
			}
		}
		if len(matched) > 0 {
			r.fn(matched, false)
		}
	}
}

// Under reports whether key starts with one of prefixes.
func Under(prefixes [][]byte, key []byte) bool {
	return slices.ContainsFunc(prefixes, func(p []byte) bool { return bytes.HasPrefix(key, p) })
}
