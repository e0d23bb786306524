package kvstore

import (
	"bytes"
	"fmt"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Tenants, objects, subscriptions and audience members (DESIGN §9; tables
// 0x20–0x25). Every id in these keys is free of NUL (the engine refuses
// one), so each segment ends at the next separator.

func (t tx) Tenant(env, id string) (*harkv1.Tenant, error) {
	return get(t, key(tableTenant, env, id), &harkv1.Tenant{}, "tenant", id)
}

func (t tx) Tenants(env, after string, limit int) ([]*harkv1.Tenant, error) {
	return list(t, under(tableTenant, env), after, limit, func() *harkv1.Tenant { return &harkv1.Tenant{} })
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
	return list(t, under(tableObject, env, collection), after, limit, func() *harkv1.Object { return &harkv1.Object{} })
}

func (t tx) PutObject(o *harkv1.Object) error {
	return put(t, key(tableObject, o.GetEnvironment(), o.GetCollection(), o.GetId()), o)
}

func (t tx) DeleteObject(env, collection, id string) error {
	return t.txn.Delete(key(tableObject, env, collection, id))
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
	return list(t, under(tableSubscription, env, collection, objectID), after, limit, func() *harkv1.Subscription { return &harkv1.Subscription{} })
}

func (t tx) Subscribers(env, collection, objectID, after string, limit int) ([]string, error) {
	return keySuffixes(t, under(tableSubscription, env, collection, objectID), after, limit)
}

func (t tx) RecipientSubscriptions(env, recipient, after string, limit int) ([]*harkv1.Subscription, error) {
	refs, err := keySuffixes(t, under(tableRecipientSubs, env, recipient), after, limit)
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
	return list(t, under(tableAudienceMember, env, audience), after, limit, func() *harkv1.AudienceMember { return &harkv1.AudienceMember{} })
}

// Audiences walks the audience → member index and takes one key per
// audience: after each, it scans again from past the audience's members,
// so a listing reads one key per audience however many members each has.
func (t tx) Audiences(env, after string, limit int) ([]string, error) {
	prefix := under(tableAudienceMember, env)
	past := func(aud string) []byte { return append(append(bytes.Clone(prefix), aud...), sep+1) }
	from := prefix
	if after != "" {
		from = past(after)
	}
	var out []string
	for len(out) < limit {
		found := false
		err := t.txn.Scan(prefix, from, false, true, func(k, _ []byte) (bool, error) {
			aud, _, ok := bytes.Cut(k[len(prefix):], []byte{sep})
			if !ok {
				return false, fmt.Errorf("audience member key %q is malformed", k)
			}
			out = append(out, string(aud))
			found = true
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		from = past(out[len(out)-1])
	}
	return out, nil
}

func (t tx) UserAudienceMemberships(env, userID, after string, limit int) ([]*harkv1.AudienceMember, error) {
	refs, err := keySuffixes(t, under(tableUserAudiences, env, userID), after, limit)
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
