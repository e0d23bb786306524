package natsstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream creates the stream if it does not exist, or checks it if it does. hark's
// streams are file-backed (JetStream's memory storage loses everything with a restart), replicated
// Options.Replicas times, and allow atomic batch publish (Commit), per-message TTL (ledger
// markers expire with the idempotency window) and direct get (LastBySubjects reads from any
// replica in one round trip).
//
// An existing stream is checked, not changed: fewer replicas than configured, memory storage,
// a missing subject or a missing feature is a *StreamConfigError that lists what to change.
// More replicas than configured is fine.
//
// Every nats-server of the cluster must run with sync_interval: always (so an acknowledged write
// is on disk before the acknowledgement); a client cannot see that setting, so it is documented
// as required rather than checked.
func (c *Conn) EnsureStream(ctx context.Context, name string, subjects []string) error {
	_, err := c.ensureStream(ctx, streamSpec{name: name, subjects: subjects})
	return err
}

// streamSpec is what EnsureStream is asked for; lastValue keeps one message
// per subject (MaxMsgsPerSubject 1), each subject holding a record's latest
// value, as DB's stream does.
type streamSpec struct {
	name      string
	subjects  []string
	lastValue bool
}

// ensureStream is EnsureStream, returning the stream.
func (c *Conn) ensureStream(ctx context.Context, spec streamSpec) (jetstream.Stream, error) {
	name, subjects := spec.name, spec.subjects
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg := jetstream.StreamConfig{
			Name:               name,
			Subjects:           subjects,
			Storage:            jetstream.FileStorage,
			Replicas:           c.replicas,
			AllowAtomicPublish: true,
			AllowMsgTTL:        true,
			AllowDirect:        true,
		}
		if spec.lastValue {
			cfg.MaxMsgsPerSubject = 1
		}
		s, err = c.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another node created it between our lookup and our create: check theirs.
			return c.ensureStream(ctx, spec)
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeReplicasNotSupported || apiErr.ErrorCode == errCodeInsufficientResources) {
			return nil, fmt.Errorf("create stream %s: the cluster cannot hold %d replicas (it needs %d JetStream servers with room; a single server needs Replicas 1): %w",
				name, c.replicas, c.replicas, err)
		}
		if err != nil {
			return nil, fmt.Errorf("create stream %s (R%d): %w", name, c.replicas, err)
		}
		// The server placed what it was asked for, or said no above; check anyway, since
		// everything hark promises about acknowledged writes rests on the replica count.
		if got := s.CachedInfo().Config; got.Replicas != c.replicas {
			return nil, fmt.Errorf("create stream %s: the server created it with %d replicas, asked for %d", name, got.Replicas, c.replicas)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", name, err)
	}
	if err := c.checkStream(s.CachedInfo().Config, spec); err != nil {
		return nil, err
	}
	return s, nil
}

// checkStream lists everything about an existing stream's config that hark cannot work with.
func (c *Conn) checkStream(cfg jetstream.StreamConfig, spec streamSpec) error {
	var problems []string
	if cfg.Replicas < c.replicas {
		problems = append(problems, fmt.Sprintf(
			"it has %d replica(s), hark is configured for %d: raise the stream's replicas to %d (nats stream edit %s --replicas %d) or configure hark for %d",
			cfg.Replicas, c.replicas, c.replicas, cfg.Name, c.replicas, cfg.Replicas))
	}
	if cfg.Storage != jetstream.FileStorage {
		problems = append(problems, "it uses memory storage, hark needs file storage: recreate the stream")
	}
	if !cfg.AllowAtomicPublish {
		problems = append(problems, "atomic batch publish is off: set allow_atomic: true on the stream")
	}
	if !cfg.AllowMsgTTL {
		problems = append(problems, "per-message TTL is off: set allow_msg_ttl: true on the stream")
	}
	if !cfg.AllowDirect {
		problems = append(problems, "direct get is off: set allow_direct: true on the stream")
	}
	if spec.lastValue && cfg.MaxMsgsPerSubject != 1 {
		problems = append(problems, "it keeps more than one message per subject, hark keeps a record's latest value only: recreate the stream")
	}
	for _, s := range spec.subjects {
		if !slices.Contains(cfg.Subjects, s) {
			problems = append(problems, fmt.Sprintf("it does not have subject %s: add it to the stream's subjects", s))
		}
	}
	if len(problems) > 0 {
		return &StreamConfigError{Stream: cfg.Name, Problems: problems}
	}
	return nil
}
