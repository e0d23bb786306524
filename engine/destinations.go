package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Destinations (DESIGN §8) are where workflow runs go: a destination of an
// environment receives every run change of its workflows (all when
// workflow_keys is empty) through the outbox (outbox.go).
//
// Status: ACTIVE destinations are sent to. PAUSED ones (set by the user)
// and DISABLED ones (a receiver answered 410 Gone) still get a delivery for
// every run change, held until the destination is ACTIVE again — nothing
// is lost while a receiver is paused. Deleting a destination fails its
// pending deliveries ("the destination was deleted"): they are not sent.
//
// Secrets: settings marked secret by the type (api_key, write_key) read
// back as SecretMask, and writing the mask back keeps them, as for source
// settings. A webhook destination's signing secret is shown only by create
// and rotate; after a rotation the previous secret also signs for
// delivery.RotationOverlap.

// maxDestinations bounds the destinations of one environment: every run
// change writes one delivery per matching destination, in the ingest
// commit.
const maxDestinations = 100

// destinationView is a destination as the API shows it: secret settings
// masked, no signing secret.
func destinationView(d *harkv1.Destination) *harkv1.Destination {
	out := cloneDestination(d)
	specs, _ := delivery.TypeSettings(d.GetType())
	for _, s := range specs {
		if _, ok := out.Settings[s.Key]; ok && s.Secret {
			out.Settings[s.Key] = SecretMask
		}
	}
	out.SigningSecret = ""
	return out
}

func cloneDestination(d *harkv1.Destination) *harkv1.Destination {
	out := &harkv1.Destination{
		Id: d.GetId(), Environment: d.GetEnvironment(), Name: d.GetName(), Type: d.GetType(), Url: d.GetUrl(),
		WorkflowKeys: slices.Clone(d.GetWorkflowKeys()), Settings: maps.Clone(d.GetSettings()),
		Status: d.GetStatus(), DisabledReason: d.GetDisabledReason(), SigningSecret: d.GetSigningSecret(),
		PreviousSecretExpiresAt: d.GetPreviousSecretExpiresAt(), CreatedAt: d.GetCreatedAt(), UpdatedAt: d.GetUpdatedAt(),
	}
	if out.Settings == nil {
		out.Settings = map[string]string{}
	}
	return out
}

// checkDestination validates a destination as it is to be saved, inside tx
// (its workflows must exist).
func (e *Engine) checkDestination(tx Tx, d *harkv1.Destination) error {
	var v validation
	name := strings.TrimSpace(d.GetName())
	switch {
	case name == "":
		v.add("name", "is required")
	case len(name) > maxNameLen:
		v.add("name", "must be at most %d characters", maxNameLen)
	}
	d.Name = name
	for _, f := range delivery.Validate(d.GetType(), d.GetUrl(), d.GetSettings(), e.allowPrivateDestinations) {
		v.add(f.Field, "%s", f.Description)
	}
	if len(d.GetWorkflowKeys()) > MaxPageSize {
		v.add("workflowKeys", "at most %d", MaxPageSize)
	}
	seen := map[string]bool{}
	for i, k := range d.GetWorkflowKeys() {
		if seen[k] {
			v.add(fmt.Sprintf("workflowKeys[%d]", i), "%q is listed twice", k)
			continue
		}
		seen[k] = true
		if _, err := tx.Workflow(k); isNotFound(err) {
			v.add(fmt.Sprintf("workflowKeys[%d]", i), "no workflow has the key %q", k)
		} else if err != nil {
			return err
		}
	}
	return v.err()
}

// CreateDestination saves a destination. A webhook destination gets a new
// signing secret, returned in signing_secret this once.
func (e *Engine) CreateDestination(ctx context.Context, req *harkv1.CreateDestinationRequest) (*harkv1.Destination, error) {
	now := e.timestamp()
	d := &harkv1.Destination{
		Id: newID("dst_"), Environment: req.GetEnvironment(), Name: req.GetName(), Type: req.GetType(), Url: req.GetUrl(),
		WorkflowKeys: req.GetWorkflowKeys(), Settings: maps.Clone(req.GetSettings()), Status: req.GetStatus(),
		CreatedAt: now, UpdatedAt: now,
	}
	switch d.GetStatus() {
	case harkv1.DestinationStatus_DESTINATION_STATUS_UNSPECIFIED:
		d.Status = harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE
	case harkv1.DestinationStatus_DESTINATION_STATUS_DISABLED:
		return nil, &ValidationError{Violations: []FieldViolation{{Field: "status", Description: "is ACTIVE or PAUSED; hark disables a destination itself when its receiver answers 410"}}}
	}
	var secrets delivery.Secrets
	if d.GetType() == delivery.TypeWebhook {
		secrets.Current = delivery.NewSecret()
	}
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(d.GetEnvironment()); err != nil {
			return err
		}
		if err := e.checkDestination(tx, d); err != nil {
			return err
		}
		existing, err := tx.Destinations(d.GetEnvironment(), "", maxDestinations)
		if err != nil {
			return err
		}
		if len(existing) >= maxDestinations {
			return &PreconditionError{Message: fmt.Sprintf("environment %q has %d destinations, the most it may have", d.GetEnvironment(), maxDestinations)}
		}
		return tx.PutDestination(d, secrets)
	})
	if err != nil {
		return nil, err
	}
	out := destinationView(d)
	out.SigningSecret = secrets.Current
	return out, nil
}

// GetDestination returns a destination, secrets masked.
func (e *Engine) GetDestination(ctx context.Context, env, id string) (*harkv1.Destination, error) {
	var d *harkv1.Destination
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		d, _, err = tx.Destination(env, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return destinationView(d), nil
}

// ListDestinations returns a page of an environment's destinations.
func (e *Engine) ListDestinations(ctx context.Context, req *harkv1.ListDestinationsRequest) (*harkv1.ListDestinationsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListDestinationsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		list, err := tx.Destinations(req.GetEnvironment(), p.after, p.limit())
		if err != nil {
			return err
		}
		list, resp.NextPageToken = finishPage(list, p, (*harkv1.Destination).GetId)
		for _, d := range list {
			resp.Destinations = append(resp.Destinations, destinationView(d))
		}
		return nil
	})
	return resp, err
}

// UpdateDestination changes the fields the request gives. Setting status
// ACTIVE resumes a paused or disabled destination: its held deliveries are
// due at once.
func (e *Engine) UpdateDestination(ctx context.Context, req *harkv1.UpdateDestinationRequest) (*harkv1.Destination, error) {
	var (
		d      *harkv1.Destination
		resume bool
	)
	err := e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		stored, secrets, err := tx.Destination(req.GetEnvironment(), req.GetId())
		if err != nil {
			return err
		}
		d = cloneDestination(stored)
		var v validation
		if req.Name != nil {
			d.Name = req.GetName()
		}
		if req.Url != nil {
			d.Url = req.GetUrl()
		}
		switch {
		case req.GetAllWorkflows() && len(req.GetWorkflowKeys()) > 0:
			v.add("allWorkflows", "cannot be combined with workflowKeys")
		case req.GetAllWorkflows():
			d.WorkflowKeys = nil
		case len(req.GetWorkflowKeys()) > 0:
			d.WorkflowKeys = req.GetWorkflowKeys()
		}
		specs, _ := delivery.TypeSettings(d.GetType())
		for _, k := range slices.Sorted(maps.Keys(req.GetSettings())) {
			value := req.GetSettings()[k]
			secret := slices.ContainsFunc(specs, func(s delivery.Setting) bool { return s.Key == k && s.Secret })
			switch {
			case secret && value == SecretMask:
			case value == "":
				delete(d.Settings, k)
			default:
				d.Settings[k] = value
			}
		}
		was := d.GetStatus()
		if req.Status != nil {
			switch req.GetStatus() {
			case harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE, harkv1.DestinationStatus_DESTINATION_STATUS_PAUSED:
				d.Status = req.GetStatus()
				if d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE {
					d.DisabledReason = ""
				}
			default:
				v.add("status", "is ACTIVE or PAUSED; hark disables a destination itself when its receiver answers 410")
			}
		}
		if err := v.err(); err != nil {
			return err
		}
		if err := e.checkDestination(tx, d); err != nil {
			return err
		}
		d.UpdatedAt = e.timestamp()
		resume = was != harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE && d.GetStatus() == harkv1.DestinationStatus_DESTINATION_STATUS_ACTIVE
		return tx.PutDestination(d, secrets)
	})
	if err != nil {
		return nil, err
	}
	if resume {
		if err := e.releaseHeld(ctx, d.GetEnvironment(), d.GetId()); err != nil {
			return nil, fmt.Errorf("resume the held deliveries: %w", err)
		}
	}
	return destinationView(d), nil
}

// DeleteDestination deletes a destination; its pending deliveries are not
// sent. Those held (it was paused or disabled) are FAILED here, saying why,
// in chunks small enough for one transaction, the last of which deletes the
// destination; those due fail the same way when the dispatcher reaches
// them. A delete that fails part way leaves the destination in place, and
// is finished by deleting again.
func (e *Engine) DeleteDestination(ctx context.Context, env, id string) error {
	after := "" // the held index is walked in id order, so a stale entry cannot loop
	for {
		deleted, start := false, after
		err := e.store.Update(ctx, func(tx Tx) error {
			deleted, after = false, start // a retried transaction starts its chunk again
			if _, err := tx.Environment(env); err != nil {
				return err
			}
			if _, _, err := tx.Destination(env, id); err != nil {
				return err
			}
			var err error
			deleted, err = e.deleteDestinationChunk(tx, env, id, &after)
			return err // not deleted: more held, for the next commit
		})
		if err != nil || deleted {
			return err
		}
	}
}

// deleteDestinationChunk fails, in tx, up to cancelChunk of the deliveries
// held for destination id after *after (as failDeleted says) and moves
// *after past them; when that was the last of them, it deletes the
// destination and reports deleted. It is the one loop body of
// DeleteDestination (a commit per chunk, so any number of held deliveries
// fits) and of configuration's prune (every chunk in the apply's one
// transaction).
func (e *Engine) deleteDestinationChunk(tx Tx, env, id string, after *string) (deleted bool, err error) {
	held, err := tx.HeldDeliveries(env, id, *after, cancelChunk)
	if err != nil {
		return false, err
	}
	for _, did := range held {
		dl, run, err := tx.Delivery(env, did)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		e.failDeleted(dl)
		dl.UpdatedAt = e.timestamp()
		if err := tx.PutDelivery(dl, nil, e.deliveryExpiry(run)); err != nil {
			return false, err
		}
	}
	if len(held) == cancelChunk {
		*after = held[len(held)-1]
		return false, nil
	}
	return true, tx.DeleteDestination(env, id)
}

// RotateDestinationSecret gives a webhook destination a new signing secret,
// returned in signing_secret this once; the previous one keeps signing for
// delivery.RotationOverlap, so receivers can switch without losing a
// message.
func (e *Engine) RotateDestinationSecret(ctx context.Context, env, id string) (*harkv1.Destination, error) {
	var (
		d       *harkv1.Destination
		secrets delivery.Secrets
	)
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if d, secrets, err = tx.Destination(env, id); err != nil {
			return err
		}
		if d.GetType() != delivery.TypeWebhook {
			return &PreconditionError{Message: fmt.Sprintf("%s destinations have no signing secret; change their settings instead", d.GetType())}
		}
		secrets = secrets.Rotate(e.now())
		d.PreviousSecretExpiresAt = timestampOrNil(secrets.PreviousExpiresAt)
		d.UpdatedAt = e.timestamp()
		return tx.PutDestination(d, secrets)
	})
	if err != nil {
		return nil, err
	}
	out := destinationView(d)
	out.SigningSecret = secrets.Current
	return out, nil
}

// TestDestination sends a signed ping to a webhook destination now, outside
// the outbox, and returns the attempt: the "does my endpoint work" button.
// Knock and Segment have no call without side effects, so they are refused.
func (e *Engine) TestDestination(ctx context.Context, env, id string) (*harkv1.DeliveryAttempt, error) {
	var (
		d       *harkv1.Destination
		secrets delivery.Secrets
	)
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		d, secrets, err = tx.Destination(env, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	a := e.outbox.client.Send(ctx, target(d, secrets), delivery.Message{ID: newID("dlv_"), EventType: delivery.EventPing, Timestamp: e.now()})
	if errors.Is(a.Err, delivery.ErrPingUnsupported) {
		return nil, &PreconditionError{Message: a.Error + "; a test would trigger a real workflow in " + d.GetType()}
	}
	return a.Proto(), nil
}

// target is what sending needs of a destination.
func target(d *harkv1.Destination, secrets delivery.Secrets) delivery.Target {
	return delivery.Target{
		ID: d.GetId(), Environment: d.GetEnvironment(), Type: d.GetType(), URL: d.GetUrl(),
		Settings: d.GetSettings(), Secrets: secrets,
	}
}
