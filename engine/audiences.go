package engine

import (
	"context"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// memberRef is the key of a membership in an audience's list.
func memberRef(m *harkv1.AudienceMember) string { return m.GetUserId() + "\x00" + m.GetTenant() }

// membershipRef is the key of a membership in a user's list.
func membershipRef(m *harkv1.AudienceMember) string {
	return m.GetAudienceKey() + "\x00" + m.GetTenant()
}

// checkMembers validates the members of one add or remove call; with
// identified, each user must be identified in env too.
func checkMembers(tx Tx, v *validation, env string, members []*harkv1.AudienceMemberRef, identified bool) error {
	checkBatch(v, "members", len(members))
	for i, m := range members {
		field := indexed("members", i)
		if identified {
			if err := checkSubscriber(tx, v, env, field+".userId", m.GetUserId()); err != nil {
				return err
			}
		} else {
			checkResourceID(v, field+".userId", m.GetUserId())
		}
		if m.GetTenant() != "" {
			checkResourceID(v, field+".tenant", m.GetTenant())
		}
	}
	return nil
}

// addAudienceMembers adds users to an audience inside tx
// (AddAudienceMembers, Knock's audiences_add_member), creating the
// audience with its first member. Every user must be identified, else
// the answer is a *ValidationError naming each one (members[i].userId)
// and nothing is written. A member already there is returned as stored.
// The tenant need not exist: in Knock it is a reference. It returns the
// members in the order named.
func (e *Engine) addAudienceMembers(tx Tx, env, key string, members []*harkv1.AudienceMemberRef) ([]*harkv1.AudienceMember, error) {
	var v validation
	checkAudienceKey(&v, "key", key)
	if err := checkMembers(tx, &v, env, members, true); err != nil {
		return nil, err
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	out := make([]*harkv1.AudienceMember, 0, len(members))
	for _, ref := range members {
		m, err := tx.AudienceMember(env, key, ref.GetUserId(), ref.GetTenant())
		switch {
		case isNotFound(err):
			m = &harkv1.AudienceMember{AudienceKey: key, UserId: ref.GetUserId(), Tenant: ref.GetTenant(), Environment: env, CreatedAt: e.timestamp()}
			if err := tx.PutAudienceMember(m); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// removeAudienceMembers removes users from an audience inside tx
// (RemoveAudienceMembers, Knock's audiences_remove_member). A membership
// is a user with a tenant: removing (user, "") leaves (user, "acme").
// Members not there are ignored.
func (e *Engine) removeAudienceMembers(tx Tx, env, key string, members []*harkv1.AudienceMemberRef) error {
	var v validation
	checkAudienceKey(&v, "key", key)
	if err := checkMembers(tx, &v, env, members, false); err != nil {
		return err
	}
	if err := v.err(); err != nil {
		return err
	}
	for _, m := range members {
		if err := tx.DeleteAudienceMember(env, key, m.GetUserId(), m.GetTenant()); err != nil {
			return err
		}
	}
	return nil
}

// deleteUserMemberships removes a user from every audience inside tx:
// part of deleting the user.
func (e *Engine) deleteUserMemberships(tx Tx, env, userID string) error {
	var ms []*harkv1.AudienceMember
	err := ForEach(func(after string, limit int) ([]*harkv1.AudienceMember, error) {
		return tx.UserAudienceMemberships(env, userID, after, limit)
	}, membershipRef, func(m *harkv1.AudienceMember) error {
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := tx.DeleteAudienceMember(env, m.GetAudienceKey(), userID, m.GetTenant()); err != nil {
			return err
		}
	}
	return nil
}

// AddAudienceMembers adds users to an audience.
func (e *Engine) AddAudienceMembers(ctx context.Context, req *harkv1.AddAudienceMembersRequest) ([]*harkv1.AudienceMember, error) {
	var members []*harkv1.AudienceMember
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		members, err = e.addAudienceMembers(tx, req.GetEnvironment(), req.GetKey(), req.GetMembers())
		return err
	})
	return members, err
}

// RemoveAudienceMembers removes users from an audience.
func (e *Engine) RemoveAudienceMembers(ctx context.Context, req *harkv1.RemoveAudienceMembersRequest) error {
	return e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		return e.removeAudienceMembers(tx, req.GetEnvironment(), req.GetKey(), req.GetMembers())
	})
}

// ListAudienceMembers returns a page of an audience's members ordered by
// user id, then tenant. An audience without members lists nothing.
func (e *Engine) ListAudienceMembers(ctx context.Context, req *harkv1.ListAudienceMembersRequest) (*harkv1.ListAudienceMembersResponse, error) {
	var v validation
	checkAudienceKey(&v, "key", req.GetKey())
	if err := v.err(); err != nil {
		return nil, err
	}
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListAudienceMembersResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		ms, err := tx.AudienceMembers(req.GetEnvironment(), req.GetKey(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Members, resp.NextPageToken = finishPage(ms, p, memberRef)
		return nil
	})
	return resp, err
}

// ListAudiences lists the environment's audiences by key.
func (e *Engine) ListAudiences(ctx context.Context, req *harkv1.ListAudiencesRequest) (*harkv1.ListAudiencesResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListAudiencesResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		keys, err := tx.Audiences(req.GetEnvironment(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Keys, resp.NextPageToken = finishPage(keys, p, func(k string) string { return k })
		return nil
	})
	return resp, err
}
