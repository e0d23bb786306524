package kvstore

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// The catalog: environments, sources with their environments and ingest
// tokens, and workflows (tables 0x01–0x06). Every write here is watched
// (watch.go).

func (t tx) Environment(slug string) (*harkv1.Environment, error) {
	return get(t, key(tableEnvironment, slug), &harkv1.Environment{}, "environment", slug)
}

func (t tx) Environments(after string, limit int) ([]*harkv1.Environment, error) {
	return list(t, []byte{tableEnvironment}, after, limit, func() *harkv1.Environment { return &harkv1.Environment{} })
}

func (t tx) PutEnvironment(env *harkv1.Environment) error {
	return put(t, key(tableEnvironment, env.GetSlug()), env)
}

func (t tx) Source(id string) (*harkv1.Source, error) {
	return get(t, key(tableSource, id), &harkv1.Source{}, "source", id)
}

func (t tx) Sources(after string, limit int) ([]*harkv1.Source, error) {
	return list(t, []byte{tableSource}, after, limit, func() *harkv1.Source { return &harkv1.Source{} })
}

func (t tx) PutSource(src *harkv1.Source) error {
	stored := proto.CloneOf(src)
	stored.Environments = nil
	return put(t, key(tableSource, src.GetId()), stored)
}

func (t tx) DeleteSource(id string) error {
	ses, err := t.SourceEnvironments(id)
	if err != nil {
		return err
	}
	for _, se := range ses {
		if err := t.dropToken(id, se.GetEnvironment()); err != nil {
			return err
		}
	}
	if err := deletePrefix(t, under(tableSourceEnv, id)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableSource, id))
}

func (t tx) SourceEnvironment(sourceID, env string) (*harkv1.SourceEnvironment, error) {
	return get(t, key(tableSourceEnv, sourceID, env), &harkv1.SourceEnvironment{}, "source environment", sourceID+"/"+env)
}

func (t tx) SourceEnvironments(sourceID string) ([]*harkv1.SourceEnvironment, error) {
	prefix := under(tableSourceEnv, sourceID)
	var out []*harkv1.SourceEnvironment
	err := engine.ForEach(func(after string, limit int) ([]*harkv1.SourceEnvironment, error) {
		return list(t, prefix, after, limit, func() *harkv1.SourceEnvironment { return &harkv1.SourceEnvironment{} })
	}, (*harkv1.SourceEnvironment).GetEnvironment, func(se *harkv1.SourceEnvironment) error {
		out = append(out, se)
		return nil
	})
	return out, err
}

func (t tx) PutSourceEnvironment(se *harkv1.SourceEnvironment) error {
	stored := proto.CloneOf(se)
	stored.IngestUrl = ""
	return put(t, key(tableSourceEnv, se.GetSourceId(), se.GetEnvironment()), stored)
}

func (t tx) IngestToken(sourceID, env string) (string, error) {
	v, err := t.txn.Get(key(tableToken, sourceID, env))
	if errors.Is(err, ErrNotFound) {
		return "", &engine.NotFoundError{Resource: "ingest token", ID: sourceID + "/" + env}
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}

func (t tx) SetIngestToken(sourceID, env, token string) error {
	if err := t.dropToken(sourceID, env); err != nil {
		return err
	}
	if err := t.txn.Set(key(tableToken, sourceID, env), []byte(token)); err != nil {
		return err
	}
	return t.txn.Set(tokenIndexKey(token), []byte(sourceID+string(rune(sep))+env))
}

// dropToken removes a source environment's token and its index entry.
func (t tx) dropToken(sourceID, env string) error {
	old, err := t.IngestToken(sourceID, env)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.txn.Delete(tokenIndexKey(old)); err != nil {
		return err
	}
	return t.txn.Delete(key(tableToken, sourceID, env))
}

func (t tx) ResolveIngestToken(token string) (string, string, error) {
	v, err := t.txn.Get(tokenIndexKey(token))
	if errors.Is(err, ErrNotFound) {
		return "", "", &engine.NotFoundError{Resource: "ingest token", ID: "(token)"}
	}
	if err != nil {
		return "", "", err
	}
	sourceID, env, ok := bytes.Cut(v, []byte{sep})
	if !ok {
		return "", "", fmt.Errorf("token index entry %x is malformed", v)
	}
	return string(sourceID), string(env), nil
}

func (t tx) Workflow(k string) (*harkv1.Workflow, error) {
	return get(t, key(tableWorkflow, k), &harkv1.Workflow{}, "workflow", k)
}

func (t tx) Workflows(after string, limit int) ([]*harkv1.Workflow, error) {
	return list(t, []byte{tableWorkflow}, after, limit, func() *harkv1.Workflow { return &harkv1.Workflow{} })
}

func (t tx) PutWorkflow(wf *harkv1.Workflow) error {
	return put(t, key(tableWorkflow, wf.GetKey()), wf)
}

func (t tx) DeleteWorkflow(k string) error {
	return t.txn.Delete(key(tableWorkflow, k))
}
