package engine

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Tenants, objects, subscriptions and audiences (DESIGN §9) are Knock's
// recipient resources beside users. Their rules, shared here:
//
//   - Tenant ids, object ids and user ids that are subscribed or are
//     audience members are the customer's own ids: any UTF-8 text of 1-255
//     bytes except NUL, which the store uses as its key separator. (A user
//     whose id holds a NUL, which identify allows, cannot be subscribed.)
//   - Collections name a kind of object and sit in URL paths: 1-128 of
//     [A-Za-z0-9_-] (so never starting with `$`, which Knock reserves for
//     its own collections such as `$users`). Audience keys are the same
//     with `.` allowed too.
//   - Properties (and a tenant's settings) are bounded as a user's are
//     (Config.MaxUserProperties, MaxUserBytes); a subscription's to
//     maxSubscriptionBytes.
//   - Subscribers and audience members are identified users of the same
//     environment, as Knock requires ("a previously identified user"):
//     naming one that is not is a field violation and nothing is written.
//     Objects as subscribers, which Knock allows, are not supported: a
//     subscription's recipient is a user id. Deleting a user deletes their
//     subscriptions and memberships in the same commit; deleting an object
//     deletes its subscriptions.
//   - An object must exist (be set) before anyone subscribes to it, as in
//     Knock; an audience exists while it has members, so adding the first
//     member creates it and listing an unknown key lists nothing.
//   - A batch (recipients of one subscribe call, members of one add) holds
//     at most maxBatch items, so one call is one bounded commit.

// maxResourceIDLen bounds tenant and object ids as maxUserIDLen does user
// ids: they are keys and must stay short.
const maxResourceIDLen = 255

// maxBatch bounds the recipients or members one call names: the same
// 1,000 as a trigger's recipients, and a commit Badger takes at once.
const maxBatch = 1000

// maxSubscriptionBytes bounds the encoded properties of one subscription:
// they describe the link (a role, a threshold), not a profile, and one
// call stores them once per recipient, so 4 KiB keeps a 1,000-recipient
// call at 4 MiB of writes.
const maxSubscriptionBytes = 4 << 10

// collectionPattern is the form of a collection name; audienceKeyPattern
// that of an audience key. Both appear in URL paths and store keys.
var (
	collectionPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	audienceKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// checkResourceID validates a tenant or object id, or a user id that is
// to be subscribed or made a member.
func checkResourceID(v *validation, field, id string) {
	switch {
	case id == "":
		v.add(field, "is required")
	case len(id) > maxResourceIDLen:
		v.add(field, "must be at most %d bytes", maxResourceIDLen)
	case !utf8.ValidString(id):
		v.add(field, "must be valid UTF-8")
	case strings.IndexByte(id, 0) >= 0:
		v.add(field, "must not contain NUL")
	}
}

func checkCollection(v *validation, field, c string) {
	if !collectionPattern.MatchString(c) {
		v.add(field, "must be 1-128 letters, digits, underscores or dashes")
	}
}

func checkAudienceKey(v *validation, field, k string) {
	if !audienceKeyPattern.MatchString(k) {
		v.add(field, "must be 1-128 letters, digits, underscores, dots or dashes")
	}
}

// checkProperties bounds a resource's properties as a user's are, adding
// a violation of field when they are past the limits.
func (e *Engine) checkProperties(v *validation, field string, props *structpb.Struct) {
	if n := len(props.GetFields()); n > e.maxUserProperties {
		v.add(field, "has %d properties; at most %d", n, e.maxUserProperties)
		return
	}
	if n := proto.Size(props); n > e.maxUserBytes {
		v.add(field, "takes %d bytes; at most %d", n, e.maxUserBytes)
	}
}

// mergeProperties returns stored with patch merged in key by key (a
// nested object replaces the stored value of its key as a whole), or
// patch alone when merge is false. It never changes its arguments.
func mergeProperties(stored, patch *structpb.Struct, merge bool) *structpb.Struct {
	if !merge || len(stored.GetFields()) == 0 {
		if len(patch.GetFields()) == 0 {
			return nil
		}
		return proto.CloneOf(patch)
	}
	out := proto.CloneOf(stored)
	for k, val := range patch.GetFields() {
		out.Fields[k] = proto.CloneOf(val)
	}
	return out
}

// checkBatch validates the size of a list of recipients or members.
func checkBatch(v *validation, field string, n int) {
	switch {
	case n == 0:
		v.add(field, "must name at least one")
	case n > maxBatch:
		v.add(field, "names %d; at most %d", n, maxBatch)
	}
}

// checkSubscriber validates a user id to subscribe or add to an audience
// and checks that the user is identified in env.
func checkSubscriber(tx Tx, v *validation, env, field, userID string) error {
	n := len(v.violations)
	checkResourceID(v, field, userID)
	if len(v.violations) > n {
		return nil
	}
	found, err := exists(tx.User(env, userID))
	if err != nil {
		return err
	}
	if !found {
		v.add(field, "user %q is not identified in this environment", userID)
	}
	return nil
}

// indexed names the i-th item of a list field: "recipients[3]".
func indexed(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
