package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// maxUserIDLen bounds user ids: they are the customer's own ids (Segment's
// userId), so any text is allowed, but they are keys and must stay short.
const maxUserIDLen = 255

// userPatch is an upsert of a user: fields that are set overwrite, the
// others stay; properties merge key by key (a nested object replaces the
// stored value of its key as a whole).
type userPatch struct {
	name, email, phoneNumber, avatar, locale, timezone *string
	properties                                         map[string]*structpb.Value
}

// reservedTraits maps identify traits to user fields (DESIGN §4). Any other
// trait is a custom property.
var reservedTraits = map[string]func(*userPatch, *string){
	"name":     func(p *userPatch, v *string) { p.name = v },
	"email":    func(p *userPatch, v *string) { p.email = v },
	"phone":    func(p *userPatch, v *string) { p.phoneNumber = v },
	"avatar":   func(p *userPatch, v *string) { p.avatar = v },
	"locale":   func(p *userPatch, v *string) { p.locale = v },
	"timezone": func(p *userPatch, v *string) { p.timezone = v },
}

// patchFromTraits maps identify traits to a user patch. A reserved trait
// whose value is not a string (a number for a phone, say) is kept as a
// property of that name rather than dropped or coerced.
func patchFromTraits(traits *structpb.Struct) userPatch {
	p := userPatch{properties: map[string]*structpb.Value{}}
	for k, v := range traits.GetFields() {
		if set, ok := reservedTraits[k]; ok {
			if s, isString := v.GetKind().(*structpb.Value_StringValue); isString {
				set(&p, &s.StringValue)
				continue
			}
		}
		p.properties[k] = v
	}
	return p
}

func patchFromRequest(req *harkv1.IdentifyUserRequest) userPatch {
	return userPatch{
		name: req.Name, email: req.Email, phoneNumber: req.PhoneNumber,
		avatar: req.Avatar, locale: req.Locale, timezone: req.Timezone,
		properties: req.GetProperties().GetFields(),
	}
}

// upsertUser applies a patch to the stored user (or a new one) inside tx.
// A user whose properties would pass the limits is left as it is, with a
// *UserLimitError.
func (e *Engine) upsertUser(tx Tx, env, id string, p userPatch) (*harkv1.User, error) {
	u, err := e.mergeUser(tx, env, id, p)
	if err != nil {
		return nil, err
	}
	return u, tx.PutUser(u)
}

// mergeUser is upsertUser without the write: the user as the patch would
// leave it, checked against the limits.
func (e *Engine) mergeUser(tx Tx, env, id string, p userPatch) (*harkv1.User, error) {
	u, err := tx.User(env, id)
	switch {
	case isNotFound(err):
		u = &harkv1.User{Id: id, Environment: env, CreatedAt: e.timestamp()}
	case err != nil:
		return nil, err
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{
		{&u.Name, p.name}, {&u.Email, p.email}, {&u.PhoneNumber, p.phoneNumber},
		{&u.Avatar, p.avatar}, {&u.Locale, p.locale}, {&u.Timezone, p.timezone},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if len(p.properties) > 0 {
		if u.Properties == nil {
			u.Properties = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		}
		for k, v := range p.properties {
			u.Properties.Fields[k] = v
		}
	}
	if n := len(u.GetProperties().GetFields()); n > e.maxUserProperties {
		return nil, &UserLimitError{UserID: id, Message: fmt.Sprintf("the user would have %d properties; at most %d", n, e.maxUserProperties)}
	}
	if n := proto.Size(u.GetProperties()); n > e.maxUserBytes {
		return nil, &UserLimitError{UserID: id, Message: fmt.Sprintf("the user's properties would take %d bytes; at most %d", n, e.maxUserBytes)}
	}
	u.UpdatedAt = e.timestamp()
	return u, nil
}

func checkUserID(v *validation, field, id string) {
	switch {
	case id == "":
		v.add(field, "is required")
	case len(id) > maxUserIDLen:
		v.add(field, "must be at most %d bytes", maxUserIDLen)
	case !utf8.ValidString(id):
		v.add(field, "must be valid UTF-8")
	}
}

// IdentifyUser creates or updates a user of an environment.
func (e *Engine) IdentifyUser(ctx context.Context, req *harkv1.IdentifyUserRequest) (*harkv1.User, error) {
	var v validation
	checkUserID(&v, "id", req.GetId())
	if err := v.err(); err != nil {
		return nil, err
	}
	var u *harkv1.User
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		u, err = e.upsertUser(tx, req.GetEnvironment(), req.GetId(), patchFromRequest(req))
		return err
	})
	var limit *UserLimitError
	if errors.As(err, &limit) {
		return nil, &ValidationError{Violations: []FieldViolation{{Field: "properties", Description: limit.Message}}}
	}
	return u, err
}

// GetUser returns one user.
func (e *Engine) GetUser(ctx context.Context, env, id string) (*harkv1.User, error) {
	var u *harkv1.User
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		u, err = tx.User(env, id)
		return err
	})
	return u, err
}

// ListUsers returns a page of an environment's users ordered by id.
func (e *Engine) ListUsers(ctx context.Context, req *harkv1.ListUsersRequest) (*harkv1.ListUsersResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListUsersResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		users, err := tx.Users(req.GetEnvironment(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Users, resp.NextPageToken = finishPage(users, p, (*harkv1.User).GetId)
		return nil
	})
	return resp, err
}

// DeleteUser deletes a user with their subscriptions and audience
// memberships. As DeleteObject, a user with more of them than
// linksPerCommit loses them a batch per commit first, and goes with the
// last batch.
func (e *Engine) DeleteUser(ctx context.Context, env, id string) error {
	return e.updateInBatches(ctx, func(tx Tx) (bool, error) {
		if _, err := tx.Environment(env); err != nil {
			return false, err
		}
		if _, err := tx.User(env, id); err != nil {
			return false, err
		}
		subs, err := tx.RecipientSubscriptions(env, id, "", linksPerCommit+1)
		if err != nil {
			return false, err
		}
		ms, err := tx.UserAudienceMemberships(env, id, "", linksPerCommit+1)
		if err != nil {
			return false, err
		}
		if len(subs) <= linksPerCommit && len(ms) <= linksPerCommit {
			return true, e.deleteUser(tx, env, id)
		}
		for _, s := range subs[:min(len(subs), linksPerCommit)] {
			if err := tx.DeleteSubscription(env, s.GetCollection(), s.GetObjectId(), id); err != nil {
				return false, err
			}
		}
		for _, m := range ms[:min(len(ms), linksPerCommit)] {
			if err := tx.DeleteAudienceMember(env, m.GetAudienceKey(), id, m.GetTenant()); err != nil {
				return false, err
			}
		}
		return false, nil
	})
}

// deleteUser deletes a user inside tx, and in the same commit their
// subscriptions and audience memberships (Segment's delete call asks for
// the user to be forgotten). A missing user is a *NotFoundError.
func (e *Engine) deleteUser(tx Tx, env, id string) error {
	if _, err := tx.User(env, id); err != nil {
		return err
	}
	if err := e.deleteRecipientSubscriptions(tx, env, id); err != nil {
		return err
	}
	if err := e.deleteUserMemberships(tx, env, id); err != nil {
		return err
	}
	return tx.DeleteUser(env, id)
}

// idempotencyKey returns an event's key when it is valid — a JSON string of
// 1-255 characters (DESIGN §4) — and otherwise "" with the reason it was
// not used: an invalid key does not reject the event, it only turns
// deduplication off for it, and the event log says why. A missing or null
// key is no key: no reason.
func idempotencyKey(raw json.RawMessage) (key, problem string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	const off = "; the event was processed without deduplication"
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Sprintf("the idempotency key is %s, not a string%s", jsonKind(raw), off)
	}
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", "the idempotency key is empty" + off
	case n > maxIdempotencyKeyLen:
		return "", fmt.Sprintf("the idempotency key has %d characters; at most %d%s", n, maxIdempotencyKeyLen, off)
	}
	return s, ""
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
