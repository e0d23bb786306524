package engine

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// checkObjectRef validates an object's collection and id.
func checkObjectRef(v *validation, collection, id string) {
	checkCollection(v, "collection", collection)
	checkResourceID(v, "id", id)
}

// setObject creates or updates an object inside tx. With merge its
// properties merge key by key (SetObject, Knock's objects_set); without,
// they are replaced. Bad input is a *ValidationError and nothing is
// written. The environment is not checked: callers have.
func (e *Engine) setObject(tx Tx, env, collection, id string, props *structpb.Struct, merge bool) (*harkv1.Object, error) {
	var v validation
	checkObjectRef(&v, collection, id)
	if err := v.err(); err != nil {
		return nil, err
	}
	o, err := tx.Object(env, collection, id)
	switch {
	case isNotFound(err):
		o = &harkv1.Object{Collection: collection, Id: id, Environment: env, CreatedAt: e.timestamp()}
	case err != nil:
		return nil, err
	}
	o.Properties = mergeProperties(o.Properties, props, merge)
	e.checkProperties(&v, "properties", o.Properties)
	if err := v.err(); err != nil {
		return nil, err
	}
	o.UpdatedAt = e.timestamp()
	return o, tx.PutObject(o)
}

// deleteObject deletes an object and every subscription to it inside tx;
// a missing object is a *NotFoundError.
func (e *Engine) deleteObject(tx Tx, env, collection, id string) error {
	if _, err := tx.Object(env, collection, id); err != nil {
		return err
	}
	// Read every subscriber before deleting any, so the walk never reads
	// through its own deletes.
	var recipients []string
	err := ForEach(func(after string, limit int) ([]string, error) {
		return tx.Subscribers(env, collection, id, after, limit)
	}, func(s string) string { return s }, func(s string) error {
		recipients = append(recipients, s)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recipients {
		if err := tx.DeleteSubscription(env, collection, id, r); err != nil {
			return err
		}
	}
	return tx.DeleteObject(env, collection, id)
}

// subscribe subscribes users to an object inside tx (AddSubscriptions,
// Knock's objects_subscribe). The object must exist (*NotFoundError);
// every recipient must be an identified user, else the answer is a
// *ValidationError naming each one (recipients[i]) and nothing is
// written. A recipient already subscribed keeps its created_at and gets
// props as the subscription's properties. A recipient named twice is
// subscribed once. It returns the subscriptions in the order named.
func (e *Engine) subscribe(tx Tx, env, collection, objectID string, recipients []string, props *structpb.Struct) ([]*harkv1.Subscription, error) {
	var v validation
	checkObjectRef(&v, collection, objectID)
	checkBatch(&v, "recipients", len(recipients))
	if n := proto.Size(props); n > maxSubscriptionBytes {
		v.add("properties", "takes %d bytes; at most %d", n, maxSubscriptionBytes)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := tx.Object(env, collection, objectID); err != nil {
		return nil, err
	}
	for i, r := range recipients {
		if err := checkSubscriber(tx, &v, env, indexed("recipients", i), r); err != nil {
			return nil, err
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(props.GetFields()) == 0 {
		props = nil
	}
	out := make([]*harkv1.Subscription, 0, len(recipients))
	seen := make(map[string]*harkv1.Subscription, len(recipients))
	for _, r := range recipients {
		if s, dup := seen[r]; dup {
			out = append(out, s)
			continue
		}
		s, err := tx.Subscription(env, collection, objectID, r)
		switch {
		case isNotFound(err):
			s = &harkv1.Subscription{Collection: collection, ObjectId: objectID, Recipient: r, Environment: env, CreatedAt: e.timestamp()}
		case err != nil:
			return nil, err
		}
		s.Properties = props
		s.UpdatedAt = e.timestamp()
		if err := tx.PutSubscription(s); err != nil {
			return nil, err
		}
		seen[r] = s
		out = append(out, s)
	}
	return out, nil
}

// unsubscribe removes users' subscriptions to an object inside tx
// (DeleteSubscriptions, Knock's objects_unsubscribe). The object must
// exist (*NotFoundError); recipients not subscribed are ignored.
func (e *Engine) unsubscribe(tx Tx, env, collection, objectID string, recipients []string) error {
	var v validation
	checkObjectRef(&v, collection, objectID)
	checkBatch(&v, "recipients", len(recipients))
	for i, r := range recipients {
		checkResourceID(&v, indexed("recipients", i), r)
	}
	if err := v.err(); err != nil {
		return err
	}
	if _, err := tx.Object(env, collection, objectID); err != nil {
		return err
	}
	for _, r := range recipients {
		if err := tx.DeleteSubscription(env, collection, objectID, r); err != nil {
			return err
		}
	}
	return nil
}

// subscribers returns the user ids subscribed to an object inside tx, in
// id order, at most limit of them; truncated says there are more. It is
// the fan-out of a recipient {"collection","id"}: it reads keys only. A
// missing object is a *NotFoundError.
func (e *Engine) subscribers(tx Tx, env, collection, objectID string, limit int) ([]string, bool, error) {
	if _, err := tx.Object(env, collection, objectID); err != nil {
		return nil, false, err
	}
	ids, err := tx.Subscribers(env, collection, objectID, "", limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(ids) > limit {
		return ids[:limit], true, nil
	}
	return ids, false, nil
}

// subscriptionRef is the key of a subscription in a recipient's list.
func subscriptionRef(s *harkv1.Subscription) string {
	return s.GetCollection() + "\x00" + s.GetObjectId()
}

// deleteRecipientSubscriptions deletes every subscription of a user
// inside tx: part of deleting the user.
func (e *Engine) deleteRecipientSubscriptions(tx Tx, env, userID string) error {
	var subs []*harkv1.Subscription
	err := ForEach(func(after string, limit int) ([]*harkv1.Subscription, error) {
		return tx.RecipientSubscriptions(env, userID, after, limit)
	}, subscriptionRef, func(s *harkv1.Subscription) error {
		subs = append(subs, s)
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := tx.DeleteSubscription(env, s.GetCollection(), s.GetObjectId(), userID); err != nil {
			return err
		}
	}
	return nil
}

// SetObject creates or updates an object.
func (e *Engine) SetObject(ctx context.Context, req *harkv1.SetObjectRequest) (*harkv1.Object, error) {
	var v validation
	checkObjectRef(&v, req.GetCollection(), req.GetId())
	if err := v.err(); err != nil {
		return nil, err
	}
	var o *harkv1.Object
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		o, err = e.setObject(tx, req.GetEnvironment(), req.GetCollection(), req.GetId(), req.GetProperties(), true)
		return err
	})
	return o, err
}

// GetObject returns one object.
func (e *Engine) GetObject(ctx context.Context, env, collection, id string) (*harkv1.Object, error) {
	var o *harkv1.Object
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		o, err = tx.Object(env, collection, id)
		return err
	})
	return o, err
}

// ListObjects returns a page of one collection's objects ordered by id.
func (e *Engine) ListObjects(ctx context.Context, req *harkv1.ListObjectsRequest) (*harkv1.ListObjectsResponse, error) {
	var v validation
	checkCollection(&v, "collection", req.GetCollection())
	if err := v.err(); err != nil {
		return nil, err
	}
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListObjectsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		objs, err := tx.Objects(req.GetEnvironment(), req.GetCollection(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Objects, resp.NextPageToken = finishPage(objs, p, (*harkv1.Object).GetId)
		return nil
	})
	return resp, err
}

// DeleteObject deletes an object and its subscriptions. The subscriptions
// of an object with more subscribers than linksPerCommit go a batch per
// commit first, and the object with the last batch, so no delete is too
// large for one commit: a crash between them leaves the object with fewer
// subscribers, and deleting it again finishes.
func (e *Engine) DeleteObject(ctx context.Context, env, collection, id string) error {
	return e.updateInBatches(ctx, func(tx Tx) (bool, error) {
		if _, err := tx.Environment(env); err != nil {
			return false, err
		}
		if _, err := tx.Object(env, collection, id); err != nil {
			return false, err
		}
		subs, err := tx.Subscribers(env, collection, id, "", linksPerCommit+1)
		if err != nil {
			return false, err
		}
		if len(subs) <= linksPerCommit {
			return true, e.deleteObject(tx, env, collection, id)
		}
		for _, r := range subs[:linksPerCommit] {
			if err := tx.DeleteSubscription(env, collection, id, r); err != nil {
				return false, err
			}
		}
		return false, nil
	})
}

// linksPerCommit is how many subscriptions or memberships one commit of a
// public delete removes at most: two keys each, far below what Badger
// takes in one transaction (about 20,000 such pairs with hark's sizes).
const linksPerCommit = MaxPageSize

// updateInBatches runs step in a commit of its own, again and again, until
// it reports it is done or fails.
func (e *Engine) updateInBatches(ctx context.Context, step func(Tx) (done bool, err error)) error {
	for {
		var done bool
		err := e.store.Update(ctx, func(tx Tx) (err error) {
			done, err = step(tx)
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// AddSubscriptions subscribes users to an object.
func (e *Engine) AddSubscriptions(ctx context.Context, req *harkv1.AddSubscriptionsRequest) ([]*harkv1.Subscription, error) {
	var subs []*harkv1.Subscription
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		subs, err = e.subscribe(tx, req.GetEnvironment(), req.GetCollection(), req.GetId(), req.GetRecipients(), req.GetProperties())
		return err
	})
	return subs, err
}

// DeleteSubscriptions unsubscribes users from an object.
func (e *Engine) DeleteSubscriptions(ctx context.Context, req *harkv1.DeleteSubscriptionsRequest) error {
	return e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		return e.unsubscribe(tx, req.GetEnvironment(), req.GetCollection(), req.GetId(), req.GetRecipients())
	})
}

// ListSubscriptions returns a page of an object's subscriptions ordered by
// recipient.
func (e *Engine) ListSubscriptions(ctx context.Context, req *harkv1.ListSubscriptionsRequest) (*harkv1.ListSubscriptionsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListSubscriptionsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		env := req.GetEnvironment()
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.Object(env, req.GetCollection(), req.GetId()); err != nil {
			return err
		}
		subs, err := tx.Subscriptions(env, req.GetCollection(), req.GetId(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Subscriptions, resp.NextPageToken = finishPage(subs, p, (*harkv1.Subscription).GetRecipient)
		return nil
	})
	return resp, err
}

// ListUserSubscriptions returns a page of the objects a user is
// subscribed to, ordered by collection, then object id.
func (e *Engine) ListUserSubscriptions(ctx context.Context, req *harkv1.ListUserSubscriptionsRequest) (*harkv1.ListUserSubscriptionsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListUserSubscriptionsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		env := req.GetEnvironment()
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.User(env, req.GetUserId()); err != nil {
			return err
		}
		subs, err := tx.RecipientSubscriptions(env, req.GetUserId(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Subscriptions, resp.NextPageToken = finishPage(subs, p, subscriptionRef)
		return nil
	})
	return resp, err
}
