package engine

import (
	"context"
	"errors"
	"regexp"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// slugPattern is the form of environment slugs: they appear in URL paths and
// in store keys, so they are short, lowercase and free of separators.
var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// ListEnvironments returns a page of environments ordered by slug.
func (e *Engine) ListEnvironments(ctx context.Context, req *harkv1.ListEnvironmentsRequest) (*harkv1.ListEnvironmentsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var envs []*harkv1.Environment
	err = e.store.View(ctx, func(tx Tx) error {
		envs, err = tx.Environments(p.after, p.limit())
		return err
	})
	if err != nil {
		return nil, err
	}
	envs, next := finishPage(envs, p, (*harkv1.Environment).GetSlug)
	return &harkv1.ListEnvironmentsResponse{Environments: envs, NextPageToken: next}, nil
}

// CreateEnvironment creates an environment and gives every source a
// configuration, with a fresh token, in it — all in one commit.
func (e *Engine) CreateEnvironment(ctx context.Context, req *harkv1.CreateEnvironmentRequest) (*harkv1.Environment, error) {
	var v validation
	if !slugPattern.MatchString(req.GetSlug()) {
		v.add("slug", "must be 1-64 lowercase letters, digits or dashes, starting with a letter")
	}
	if len(req.GetName()) > maxNameLen {
		v.add("name", "must be at most %d characters", maxNameLen)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	env := &harkv1.Environment{Slug: req.GetSlug(), Name: req.GetName(), CreatedAt: e.timestamp()}
	if env.Name == "" {
		env.Name = env.Slug
	}
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	err := e.store.Update(ctx, func(tx Tx) error {
		if found, err := exists(tx.Environment(env.Slug)); err != nil || found {
			return cmpErr(err, &AlreadyExistsError{Resource: "environment", ID: env.Slug})
		}
		if err := tx.PutEnvironment(env); err != nil {
			return err
		}
		return ForEach(tx.Sources, (*harkv1.Source).GetId, func(src *harkv1.Source) error {
			return e.addSourceEnvironment(tx, src.GetId(), env.Slug)
		})
	})
	if err != nil {
		return nil, err
	}
	return env, nil
}

// ForEach calls fn for every record of a Tx list method, fetching pages of
// MaxPageSize, so whole-table walks inside one transaction stay bounded in
// memory per step.
func ForEach[T any](list func(after string, limit int) ([]T, error), key func(T) string, fn func(T) error) error {
	after := ""
	for {
		items, err := list(after, MaxPageSize)
		if err != nil {
			return err
		}
		for _, item := range items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(items) < MaxPageSize {
			return nil
		}
		after = key(items[len(items)-1])
	}
}

// exists turns a getter's result into whether the record is there; an error
// other than not-found is returned as is.
func exists[T any](_ T, err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return false, err
}

// cmpErr returns err when it is set, else alt: for "failed, or found when it
// must not be" checks.
func cmpErr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}
