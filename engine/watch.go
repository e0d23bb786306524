package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// follower keeps the engine's in-memory state in step with the store's
// changes (Store.Watch): the trigger registry, the catalog cache and the run
// watchers. Nothing else updates them after the start, so a change another
// node commits to a shared store takes effect here exactly as one of this
// node's own.
type follower struct {
	// mu serializes applying trigger changes: each reads the trigger again
	// under it, so whichever runs last read after the last commit, and the
	// registry ends on what is stored however the changes interleave.
	mu   sync.Mutex
	stop func()
	// layout wakes repairLayout (buffered 1): an environment or a source
	// was written.
	layout chan struct{}
	// reload wakes reloadAfterFailure (buffered 1): applying a trigger
	// change failed to read the store, so the registry may lag it.
	reload chan struct{}
}

// follow registers the engine's watcher. It runs before the registry is
// first loaded, so no change committed during the load is missed.
func (e *Engine) follow() {
	e.follower.layout = make(chan struct{}, 1)
	e.follower.reload = make(chan struct{}, 1)
	e.follower.stop = e.store.Watch(e.applyChanges)
}

// repairLayout closes the gaps in the layout that concurrent writers on
// other nodes can leave (see completeLayout), after each change to it, until
// the engine closes. It runs apart from the watch, whose callbacks must not
// write.
func (e *Engine) repairLayout() {
	defer e.wg.Done()
	for {
		select {
		case <-e.stop:
			return
		case <-e.follower.layout:
		}
		ctx, cancel := context.WithTimeout(context.Background(), layoutRepairTimeout)
		if err := e.completeLayout(ctx); err != nil && !errors.Is(err, ErrUnavailable) {
			e.log.Error("complete the source environments after a layout change", "err", err)
		}
		cancel()
	}
}

// layoutRepairTimeout bounds one repair; the next layout change tries again.
const layoutRepairTimeout = 30 * time.Second

// reloadAfterFailure reloads every trigger, once a second until it
// succeeds, after a trigger change could not be applied: no second
// notification of that change would come, and the registry would lag the
// store until the next start.
func (e *Engine) reloadAfterFailure() {
	defer e.wg.Done()
	for {
		select {
		case <-e.stop:
			return
		case <-e.follower.reload:
		}
		for {
			e.follower.mu.Lock()
			err := e.loadTriggers(context.Background())
			e.follower.mu.Unlock()
			if err == nil {
				break
			}
			e.log.Error("reload the triggers", "err", err)
			select {
			case <-e.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// reloadLater has reloadAfterFailure reload every trigger.
func (e *Engine) reloadLater() {
	select {
	case e.follower.reload <- struct{}{}:
	default:
	}
}

// applyChanges applies one commit's changes.
func (e *Engine) applyChanges(changes []Change) {
	var catalog, layout, runs, reset bool
	var triggers []Change
	for _, c := range changes {
		switch c.Kind {
		case ChangeCatalog:
			catalog = true
		case ChangeLayout:
			catalog, layout = true, true
		case ChangeRuns:
			runs = true
		case ChangeTrigger:
			triggers = append(triggers, c)
		case ChangeReset:
			reset = true
		}
	}
	if catalog || reset {
		e.catalog.invalidate()
	}
	if runs || reset {
		e.runs.notify()
	}
	if layout || reset {
		select {
		case e.follower.layout <- struct{}{}:
		default:
		}
	}
	if reset {
		e.follower.mu.Lock()
		defer e.follower.mu.Unlock()
		if err := e.loadTriggers(context.Background()); err != nil {
			e.log.Error("reload the triggers after the store's watch reconnected", "err", err)
			e.reloadLater()
		}
		return
	}
	if len(triggers) > 0 {
		e.reloadTriggers(triggers)
	}
}

// reloadTriggers reads changed triggers again and puts them into the
// registry, or drops those that are gone.
func (e *Engine) reloadTriggers(changes []Change) {
	e.follower.mu.Lock()
	defer e.follower.mu.Unlock()
	stored := make([]*harkv1.Trigger, len(changes))
	err := e.store.View(context.Background(), func(tx Tx) error {
		for i, c := range changes {
			t, err := tx.Trigger(c.Environment, c.ID)
			var nf *NotFoundError
			switch {
			case errors.As(err, &nf):
				stored[i] = nil
			case err != nil:
				return err
			default:
				stored[i] = t
			}
		}
		return nil
	})
	if err != nil {
		// The commit holds; only this node's registry lags, until the
		// reload catches up.
		e.log.Error("read changed triggers; reloading them all", "count", len(changes), "err", err)
		e.reloadLater()
		return
	}
	cache := programCache{}
	for i, t := range stored {
		if t == nil {
			e.triggers.update(nil, changes[i].ID)
			continue
		}
		ct, err := compileTriggerCached(t, cache)
		if err != nil {
			e.log.Error("trigger no longer compiles; it will not run", "trigger", t.GetId(), "err", err)
			e.triggers.update(nil, t.GetId())
			continue
		}
		e.triggers.update(ct, "")
	}
}
