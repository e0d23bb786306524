package badgerstore

import (
	"bytes"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Tenants, objects, subscriptions and audience members (DESIGN §9); see the
// package doc for their keys. Every id in these keys is free of NUL (the
// engine refuses one), so each segment ends at the next separator.
const (
	tableTenant         byte = 0x20
	tableObject         byte = 0x21
	tableSubscription   byte = 0x22
	tableRecipientSubs  byte = 0x23
	tableAudienceMember byte = 0x24
	tableUserAudiences  byte = 0x25
)

func (t tx) Tenant(env, id string) (*harkv1.Tenant, error) {
	return get(t, key(tableTenant, env, id), &harkv1.Tenant{}, "tenant", id)
}

func (t tx) Tenants(env, after string, limit int) ([]*harkv1.Tenant, error) {
	return list(t, append(key(tableTenant, env), sep), after, limit, func() *harkv1.Tenant { return &harkv1.Tenant{} })
}

func (t tx) PutTenant(tn *harkv1.Tenant) error {
	return put(t, key(tableTenant, tn.GetEnvironment(), tn.GetId()), tn)
}

func (t tx) DeleteTenant(env, id string) error {
	return t.txn.Delete(key(tableTenant, env, id))
}

func (t tx) Object(env, collection, id string) (*harkv1.Object, error) {
	return get(t, key(tableObject, env, collection, id), &harkv1.Object{}, "object", collection+"/"+id)
}

func (t tx) Objects(env, collection, after string, limit int) ([]*harkv1.Object, error) {
	return list(t, append(key(tableObject, env, collection), sep), after, limit, func() *harkv1.Object { return &harkv1.Object{} })
}

func (t tx) PutObject(o *harkv1.Object) error {
	return put(t, key(tableObject, o.GetEnvironment(), o.GetCollection(), o.GetId()), o)
}

func (t tx) DeleteObject(env, collection, id string) error {
	return t.txn.Delete(key(tableObject, env, collection, id))
}

func subscriptionKey(env, collection, objectID, recipient string) []byte {
	return key(tableSubscription, env, collection, objectID, recipient)
}

func recipientSubKey(env, recipient, collection, objectID string) []byte {
	return key(tableRecipientSubs, env, recipient, collection, objectID)
}

func (t tx) Subscription(env, collection, objectID, recipient string) (*harkv1.Subscription, error) {
	return get(t, subscriptionKey(env, collection, objectID, recipient), &harkv1.Subscription{}, "subscription", collection+"/"+objectID+" ← "+recipient)
}

func (t tx) PutSubscription(s *harkv1.Subscription) error {
	env, coll, obj, rcpt := s.GetEnvironment(), s.GetCollection(), s.GetObjectId(), s.GetRecipient()
	if err := put(t, subscriptionKey(env, coll, obj, rcpt), s); err != nil {
		return err
	}
	return t.txn.Set(recipientSubKey(env, rcpt, coll, obj), nil)
}

func (t tx) DeleteSubscription(env, collection, objectID, recipient string) error {
	if err := t.txn.Delete(subscriptionKey(env, collection, objectID, recipient)); err != nil {
		return err
	}
	return t.txn.Delete(recipientSubKey(env, recipient, collection, objectID))
}

func (t tx) Subscriptions(env, collection, objectID, after string, limit int) ([]*harkv1.Subscription, error) {
	return list(t, append(key(tableSubscription, env, collection, objectID), sep), after, limit, func() *harkv1.Subscription { return &harkv1.Subscription{} })
}

func (t tx) Subscribers(env, collection, objectID, after string, limit int) ([]string, error) {
	return keySuffixes(t, append(key(tableSubscription, env, collection, objectID), sep), after, limit)
}

func (t tx) RecipientSubscriptions(env, recipient, after string, limit int) ([]*harkv1.Subscription, error) {
	refs, err := keySuffixes(t, append(key(tableRecipientSubs, env, recipient), sep), after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*harkv1.Subscription, 0, len(refs))
	for _, ref := range refs {
		coll, obj, ok := bytes.Cut([]byte(ref), []byte{sep})
		if !ok {
			return nil, fmt.Errorf("subscription index entry %q is malformed", ref)
		}
		s, err := t.Subscription(env, string(coll), string(obj), recipient)
		if err != nil {
			return nil, fmt.Errorf("subscription index of %q: %w", recipient, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func memberKey(env, audience, userID, tenant string) []byte {
	return key(tableAudienceMember, env, audience, userID, tenant)
}

func userAudienceKey(env, userID, audience, tenant string) []byte {
	return key(tableUserAudiences, env, userID, audience, tenant)
}

func (t tx) AudienceMember(env, audience, userID, tenant string) (*harkv1.AudienceMember, error) {
	return get(t, memberKey(env, audience, userID, tenant), &harkv1.AudienceMember{}, "audience member", audience+" ∋ "+userID)
}

func (t tx) PutAudienceMember(m *harkv1.AudienceMember) error {
	env, aud, user, tenant := m.GetEnvironment(), m.GetAudienceKey(), m.GetUserId(), m.GetTenant()
	if err := put(t, memberKey(env, aud, user, tenant), m); err != nil {
		return err
	}
	return t.txn.Set(userAudienceKey(env, user, aud, tenant), nil)
}

func (t tx) DeleteAudienceMember(env, audience, userID, tenant string) error {
	if err := t.txn.Delete(memberKey(env, audience, userID, tenant)); err != nil {
		return err
	}
	return t.txn.Delete(userAudienceKey(env, userID, audience, tenant))
}

func (t tx) AudienceMembers(env, audience, after string, limit int) ([]*harkv1.AudienceMember, error) {
	return list(t, append(key(tableAudienceMember, env, audience), sep), after, limit, func() *harkv1.AudienceMember { return &harkv1.AudienceMember{} })
}

// Audiences walks the audience → member index and takes one key per
// audience: after each, it seeks past the audience's members, so a listing
// reads one key per audience however many members each has.
func (t tx) Audiences(env, after string, limit int) ([]string, error) {
	prefix := append(key(tableAudienceMember, env), sep)
	past := func(aud []byte) []byte { return append(append(bytes.Clone(prefix), aud...), sep+1) }
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	start := prefix
	if after != "" {
		start = past([]byte(after))
	}
	var out []string
	for it.Seek(start); it.Valid() && len(out) < limit; it.Seek(past([]byte(out[len(out)-1]))) {
		aud, _, ok := bytes.Cut(it.Item().Key()[len(prefix):], []byte{sep})
		if !ok {
			return nil, fmt.Errorf("audience member key %q is malformed", it.Item().Key())
		}
		out = append(out, string(aud))
	}
	return out, nil
}

func (t tx) UserAudienceMemberships(env, userID, after string, limit int) ([]*harkv1.AudienceMember, error) {
	refs, err := keySuffixes(t, append(key(tableUserAudiences, env, userID), sep), after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*harkv1.AudienceMember, 0, len(refs))
	for _, ref := range refs {
		aud, tenant, ok := bytes.Cut([]byte(ref), []byte{sep})
		if !ok {
			return nil, fmt.Errorf("audience index entry %q is malformed", ref)
		}
		m, err := t.AudienceMember(env, string(aud), userID, string(tenant))
		if err != nil {
			return nil, fmt.Errorf("audience index of %q: %w", userID, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// keySuffixes lists, in order, the parts after prefix of up to limit keys
// under it that sort after `after`, reading keys only.
func keySuffixes(t tx, prefix []byte, after string, limit int) ([]string, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	start := append(bytes.Clone(prefix), after...)
	var out []string
	for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
		k := it.Item().Key()
		if after != "" && bytes.Equal(k, start) {
			continue
		}
		out = append(out, string(k[len(prefix):]))
	}
	return out, nil
}
