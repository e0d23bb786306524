package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Listing fixtures. ids sort as bytes do ("a" < "a0" < "a1" < "a10" < "b"),
// some a prefix of another. Each listing's parent (environment, collection,
// object, recipient, audience, source) has neighbours whose names extend
// it or that it extends — "dev" beside "de" and "dev2", object "a" beside
// "ab" — holding records that must not show in its listing.
var (
	listIDs      = []string{"a", "a0", "a1", "a10", "b"}
	otherIDs     = []string{"a", "a00", "a2", "c"}
	listEnv      = "dev"
	neighborEnvs = []string{"de", "dev2"}
)

// shuffled returns ids in a fixed order that is not their sorted one, so a
// backend that lists in write order fails.
func shuffled(ids []string) []string {
	out := slices.Clone(ids)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if slices.IsSorted(out) {
		slices.Reverse(out)
	}
	return out
}

// pair is a listing key of two segments, "<first>\x00<second>", the form
// after takes for composite orders.
func pair(first, second string) string { return first + "\x00" + second }

// listing is one ordered listing: its records' keys as after takes them,
// in the order store.go documents.
type listing struct {
	name string
	list func(tx engine.Tx, after string, limit int) ([]string, error)
	want []string
}

// keys maps a page of records to their listing keys.
func keys[M any](page []M, err error, key func(M) string) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, len(page))
	for i, m := range page {
		out[i] = key(m)
	}
	return out, nil
}

// writeListingFixtures writes every listing's records and their
// neighbours'.
func writeListingFixtures(tx engine.Tx) error {
	// The catalog's own listings, which have no parent.
	for _, id := range shuffled(listIDs) {
		if err := tx.PutEnvironment(&harkv1.Environment{Slug: id}); err != nil {
			return err
		}
		if err := tx.PutSource(&harkv1.Source{Id: id, Type: "segment"}); err != nil {
			return err
		}
		if err := tx.PutWorkflow(&harkv1.Workflow{Key: id}); err != nil {
			return err
		}
	}
	// Records directly under an environment.
	for _, env := range append([]string{listEnv}, neighborEnvs...) {
		ids := otherIDs
		if env == listEnv {
			ids = listIDs
		}
		for _, id := range shuffled(ids) {
			if err := tx.PutUser(&harkv1.User{Environment: env, Id: id}); err != nil {
				return err
			}
			if err := tx.PutTrigger(&harkv1.Trigger{Environment: env, Id: id, WorkflowKey: "wf"}); err != nil {
				return err
			}
			if err := tx.PutTenant(&harkv1.Tenant{Environment: env, Id: id}); err != nil {
				return err
			}
			if err := tx.PutDestination(&harkv1.Destination{Environment: env, Id: id, Type: "webhook"}, delivery.Secrets{Current: "whsec_" + id}); err != nil {
				return err
			}
			if env == listEnv {
				if err := tx.PutObject(&harkv1.Object{Environment: env, Collection: "c", Id: id}); err != nil {
					return err
				}
				continue
			}
			// Neighbouring environments also hold the parents listed
			// below, so a leak across the environment boundary shows.
			if err := tx.PutObject(&harkv1.Object{Environment: env, Collection: "c", Id: id}); err != nil {
				return err
			}
			if err := tx.PutSubscription(&harkv1.Subscription{Environment: env, Collection: "c", ObjectId: "a", Recipient: id + "-x"}); err != nil {
				return err
			}
			if err := tx.PutAudienceMember(&harkv1.AudienceMember{Environment: env, AudienceKey: "beta", UserId: id + "-x"}); err != nil {
				return err
			}
			if err := tx.CountEventType(&harkv1.EventType{SourceId: "s", Environment: env, Type: "track", Name: id + "-x"}); err != nil {
				return err
			}
		}
	}
	// Objects of collection "c" in dev (above), and of its neighbours.
	for _, coll := range []string{"c0", "cd"} {
		for _, id := range otherIDs {
			if err := tx.PutObject(&harkv1.Object{Environment: listEnv, Collection: coll, Id: id}); err != nil {
				return err
			}
		}
	}
	// Subscriptions: recipients of object c/a; object "ab" and collection
	// "cd" beside it. Recipient "r" is subscribed to several objects,
	// recipient "r1" beside it to others.
	for _, id := range shuffled(listIDs) {
		for _, s := range []*harkv1.Subscription{
			{Collection: "c", ObjectId: "a", Recipient: id},
			{Collection: "c", ObjectId: "ab", Recipient: id + "-ab"},
			{Collection: "cd", ObjectId: "a", Recipient: id + "-cd"},
		} {
			s.Environment = listEnv
			if err := tx.PutSubscription(s); err != nil {
				return err
			}
		}
	}
	for _, s := range recipientSubs {
		if err := tx.PutSubscription(&harkv1.Subscription{Environment: listEnv, Collection: s[0], ObjectId: s[1], Recipient: "r"}); err != nil {
			return err
		}
		if err := tx.PutSubscription(&harkv1.Subscription{Environment: listEnv, Collection: s[0], ObjectId: s[1] + "1", Recipient: "r1"}); err != nil {
			return err
		}
	}
	// Audience members: audience "beta" by user, then tenant; "bet" and
	// "beta2" beside it. User "m" belongs to several audiences, "m1"
	// beside it to others.
	for _, m := range memberRefs {
		if err := tx.PutAudienceMember(&harkv1.AudienceMember{Environment: listEnv, AudienceKey: "beta", UserId: m[0], Tenant: m[1]}); err != nil {
			return err
		}
		for _, aud := range []string{"bet", "beta2"} {
			if err := tx.PutAudienceMember(&harkv1.AudienceMember{Environment: listEnv, AudienceKey: aud, UserId: m[0] + "-" + aud, Tenant: m[1]}); err != nil {
				return err
			}
		}
	}
	for _, m := range membershipRefs {
		if err := tx.PutAudienceMember(&harkv1.AudienceMember{Environment: listEnv, AudienceKey: m[0], UserId: "m", Tenant: m[1]}); err != nil {
			return err
		}
		if err := tx.PutAudienceMember(&harkv1.AudienceMember{Environment: listEnv, AudienceKey: m[0] + "1", UserId: "m1", Tenant: m[1]}); err != nil {
			return err
		}
	}
	// Event types of source "s" in dev by type, then name; source "s2"
	// beside it.
	for _, e := range eventTypeRefs {
		for _, src := range []string{"s", "s2"} {
			if err := tx.CountEventType(&harkv1.EventType{SourceId: src, Environment: listEnv, Type: e[0], Name: e[1]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Composite fixtures, written out of order; the listings sort them.
var (
	// recipientSubs are recipient "r"'s (collection, object) pairs.
	recipientSubs = [][2]string{{"k", "b"}, {"j", "z"}, {"k", "a"}, {"k", "a0"}, {"kd", "a"}}
	// memberRefs are audience "beta"'s (user, tenant) pairs.
	memberRefs = [][2]string{{"a1", ""}, {"a", "t"}, {"a", ""}, {"b", "t"}, {"a0", "t"}, {"a", "t0"}}
	// membershipRefs are user "m"'s (audience, tenant) pairs.
	membershipRefs = [][2]string{{"b", ""}, {"a", "t"}, {"a", ""}, {"a0", ""}}
	// eventTypeRefs are source "s"'s (type, name) pairs in dev.
	eventTypeRefs = [][2]string{{"track", "b"}, {"identify", ""}, {"track", "a"}, {"track", "a b"}, {"group", "x"}}
)

// sortedPairs returns refs as listing keys in (first, second) order.
func sortedPairs(refs [][2]string) []string {
	s := slices.Clone(refs)
	slices.SortFunc(s, func(a, b [2]string) int {
		if c := compare(a[0], b[0]); c != 0 {
			return c
		}
		return compare(a[1], b[1])
	})
	out := make([]string, len(s))
	for i, r := range s {
		out[i] = pair(r[0], r[1])
	}
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func listings() []listing {
	env := listEnv
	audiences := []string{"beta", "bet", "beta2"}
	for _, m := range membershipRefs {
		audiences = append(audiences, m[0], m[0]+"1")
	}
	slices.Sort(audiences)
	audiences = slices.Compact(audiences)
	recipients := func(page []*harkv1.Subscription, err error) ([]string, error) {
		return keys(page, err, (*harkv1.Subscription).GetRecipient)
	}
	objectRefs := func(page []*harkv1.Subscription, err error) ([]string, error) {
		return keys(page, err, func(s *harkv1.Subscription) string { return pair(s.GetCollection(), s.GetObjectId()) })
	}
	return []listing{
		{"Environments", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Environments(after, limit)
			return keys(page, err, (*harkv1.Environment).GetSlug)
		}, listIDs},
		{"Sources", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Sources(after, limit)
			return keys(page, err, (*harkv1.Source).GetId)
		}, listIDs},
		{"Workflows", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Workflows(after, limit)
			return keys(page, err, (*harkv1.Workflow).GetKey)
		}, listIDs},
		{"Users", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Users(env, after, limit)
			return keys(page, err, (*harkv1.User).GetId)
		}, listIDs},
		{"Triggers", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Triggers(env, after, limit)
			return keys(page, err, (*harkv1.Trigger).GetId)
		}, listIDs},
		{"Tenants", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Tenants(env, after, limit)
			return keys(page, err, (*harkv1.Tenant).GetId)
		}, listIDs},
		{"Destinations", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Destinations(env, after, limit)
			return keys(page, err, (*harkv1.Destination).GetId)
		}, listIDs},
		{"Objects", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.Objects(env, "c", after, limit)
			return keys(page, err, (*harkv1.Object).GetId)
		}, listIDs},
		{"Subscriptions", func(tx engine.Tx, after string, limit int) ([]string, error) {
			return recipients(tx.Subscriptions(env, "c", "a", after, limit))
		}, listIDs},
		{"Subscribers", func(tx engine.Tx, after string, limit int) ([]string, error) {
			return tx.Subscribers(env, "c", "a", after, limit)
		}, listIDs},
		{"RecipientSubscriptions", func(tx engine.Tx, after string, limit int) ([]string, error) {
			return objectRefs(tx.RecipientSubscriptions(env, "r", after, limit))
		}, sortedPairs(recipientSubs)},
		{"AudienceMembers", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.AudienceMembers(env, "beta", after, limit)
			return keys(page, err, func(m *harkv1.AudienceMember) string { return pair(m.GetUserId(), m.GetTenant()) })
		}, sortedPairs(memberRefs)},
		{"UserAudienceMemberships", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.UserAudienceMemberships(env, "m", after, limit)
			return keys(page, err, func(m *harkv1.AudienceMember) string { return pair(m.GetAudienceKey(), m.GetTenant()) })
		}, sortedPairs(membershipRefs)},
		{"Audiences", func(tx engine.Tx, after string, limit int) ([]string, error) {
			return tx.Audiences(env, after, limit)
		}, audiences},
		{"EventTypes", func(tx engine.Tx, after string, limit int) ([]string, error) {
			page, err := tx.EventTypes("s", env, after, limit)
			return keys(page, err, func(e *harkv1.EventType) string { return pair(e.GetType(), e.GetName()) })
		}, sortedPairs(eventTypeRefs)},
	}
}

// checkListing lists l whole, with a limit, page by page and after each of
// its keys, and compares every result with the documented order.
func checkListing(tx engine.Tx, l listing) error {
	const all = 1000
	got, err := l.list(tx, "", all)
	if err != nil {
		return err
	}
	if !slices.Equal(got, l.want) {
		return fmt.Errorf("listed %q, want %q", got, l.want)
	}
	for _, limit := range []int{1, 2, 3} {
		var paged []string
		after := ""
		for range len(l.want) + 2 {
			page, err := l.list(tx, after, limit)
			if err != nil {
				return err
			}
			if len(page) > limit {
				return fmt.Errorf("limit %d after %q returned %d records", limit, after, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1]
		}
		if !slices.Equal(paged, l.want) {
			return fmt.Errorf("paging by %d listed %q, want %q", limit, paged, l.want)
		}
	}
	for i, after := range l.want {
		got, err := l.list(tx, after, all)
		if err != nil {
			return err
		}
		if want := l.want[i+1:]; !slices.Equal(got, want) {
			return fmt.Errorf("after %q listed %q, want %q", after, got, want)
		}
	}
	return nil
}

// testOrderedListings: every listing returns its parent's records, and only
// its parent's, in the documented order, honouring after and limit; a
// two-index record deleted leaves both indexes.
func testOrderedListings(t *testing.T, open opener) {
	s := open(t)
	// Listed in the Update that wrote them (read-your-writes), then after
	// the commit.
	update(t, s, func(tx engine.Tx) error {
		if err := writeListingFixtures(tx); err != nil {
			return err
		}
		for _, l := range listings() {
			if err := checkListing(tx, l); err != nil {
				t.Errorf("%s, in the Update that wrote it: %v", l.name, err)
			}
		}
		return nil
	})
	view(t, s, func(tx engine.Tx) error {
		for _, l := range listings() {
			if err := checkListing(tx, l); err != nil {
				t.Errorf("%s: %v", l.name, err)
			}
		}
		return nil
	})

	// Deleting a subscription or membership removes it from both of its
	// indexes.
	update(t, s, func(tx engine.Tx) error {
		if err := tx.DeleteSubscription(listEnv, "k", "a", "r"); err != nil {
			return err
		}
		return tx.DeleteAudienceMember(listEnv, "a", "m", "t")
	})
	view(t, s, func(tx engine.Tx) error {
		_, err := tx.Subscription(listEnv, "k", "a", "r")
		if err := checkNotFound("deleted subscription", err); err != nil {
			t.Error(err)
		}
		subscribers, err := tx.Subscribers(listEnv, "k", "a", "", 100)
		if err != nil {
			return err
		}
		if slices.Contains(subscribers, "r") {
			t.Errorf("Subscribers of k/a still lists r after DeleteSubscription: %q", subscribers)
		}
		subs, err := tx.RecipientSubscriptions(listEnv, "r", "", 100)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(subs, func(s *harkv1.Subscription) bool { return s.GetCollection() == "k" && s.GetObjectId() == "a" }) {
			t.Errorf("RecipientSubscriptions of r still lists k/a after DeleteSubscription")
		}
		if len(subs) != len(recipientSubs)-1 {
			t.Errorf("RecipientSubscriptions of r lists %d subscriptions after one of %d was deleted", len(subs), len(recipientSubs))
		}

		_, err = tx.AudienceMember(listEnv, "a", "m", "t")
		if err := checkNotFound("deleted audience member", err); err != nil {
			t.Error(err)
		}
		members, err := tx.AudienceMembers(listEnv, "a", "", 100)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(members, func(m *harkv1.AudienceMember) bool { return m.GetUserId() == "m" && m.GetTenant() == "t" }) {
			t.Errorf("AudienceMembers of a still lists m/t after DeleteAudienceMember")
		}
		ms, err := tx.UserAudienceMemberships(listEnv, "m", "", 100)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ms, func(m *harkv1.AudienceMember) bool { return m.GetAudienceKey() == "a" && m.GetTenant() == "t" }) {
			t.Errorf("UserAudienceMemberships of m still lists a/t after DeleteAudienceMember")
		}
		if len(ms) != len(membershipRefs)-1 {
			t.Errorf("UserAudienceMemberships of m lists %d after one of %d was deleted", len(ms), len(membershipRefs))
		}
		return nil
	})
}
