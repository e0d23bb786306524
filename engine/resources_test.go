package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TestSubscriptionsPastOnePage subscribes more users to an object, and a
// user to more objects, than one store page (engine.MaxPageSize) holds:
// the fan-out stops at its limit and says so, and deleting the object or
// the user removes every subscription, past the first page too (the
// public deletes take more than one commit for those).
func TestSubscriptionsPastOnePage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _ := newEngine(t, withRequired)
	const env, n = "development", engine.MaxPageSize + 500
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%05d", i)
		if _, err := e.IdentifyUser(ctx, &harkv1.IdentifyUserRequest{Environment: env, Id: users[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.SetObject(ctx, &harkv1.SetObjectRequest{Environment: env, Collection: "topics", Id: "all"}); err != nil {
		t.Fatal(err)
	}
	for start := 0; start < n; start += engine.MaxPageSize {
		batch := users[start:min(start+engine.MaxPageSize, n)]
		if _, err := e.AddSubscriptions(ctx, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "topics", Id: "all", Recipients: batch}); err != nil {
			t.Fatal(err)
		}
	}

	ids, truncated, err := e.SubscribersForTest(ctx, env, "topics", "all", 10_000)
	if err != nil || truncated || !slices.Equal(ids, users) {
		t.Fatalf("subscribers(10000) = %d ids, truncated %v, %v; want all %d in order", len(ids), truncated, err, n)
	}
	ids, truncated, err = e.SubscribersForTest(ctx, env, "topics", "all", 1000)
	if err != nil || !truncated || !slices.Equal(ids, users[:1000]) {
		t.Fatalf("subscribers(1000) = %d ids, truncated %v, %v; want the first 1000, truncated", len(ids), truncated, err)
	}
	var nf *engine.NotFoundError
	if _, _, err := e.SubscribersForTest(ctx, env, "topics", "missing", 10); !errors.As(err, &nf) || nf.Resource != "object" {
		t.Fatalf("subscribers of a missing object: %v, want an object NotFoundError", err)
	}

	// One user subscribed to more objects than a page.
	heavy := users[0]
	for i := range engine.MaxPageSize + 1 {
		id := fmt.Sprintf("o%05d", i)
		if _, err := e.SetObject(ctx, &harkv1.SetObjectRequest{Environment: env, Collection: "items", Id: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.AddSubscriptions(ctx, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "items", Id: id, Recipients: []string{heavy}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.DeleteUser(ctx, env, heavy); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o00000", fmt.Sprintf("o%05d", engine.MaxPageSize)} {
		ids, _, err := e.SubscribersForTest(ctx, env, "items", id, 10)
		if err != nil || len(ids) != 0 {
			t.Fatalf("items/%s subscribers after deleting %s = %q, %v; want none", id, heavy, ids, err)
		}
	}
	ids, _, err = e.SubscribersForTest(ctx, env, "topics", "all", 10_000)
	if err != nil || !slices.Equal(ids, users[1:]) {
		t.Fatalf("topics/all after deleting %s: %d ids, %v; want %d", heavy, len(ids), err, n-1)
	}

	// Deleting the object removes all its subscriptions from the users' side.
	if err := e.DeleteObject(ctx, env, "topics", "all"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{users[1], users[n-1]} {
		res, err := e.ListUserSubscriptions(ctx, &harkv1.ListUserSubscriptionsRequest{Environment: env, UserId: u})
		if err != nil || len(res.GetSubscriptions()) != 0 {
			t.Fatalf("%s's subscriptions after the object's deletion = %v, %v; want none", u, res, err)
		}
	}
}

// TestTenantPatchFromTraits checks how group traits and inline tenants map
// to a tenant: name and settings by name and type, the rest properties.
func TestTenantPatchFromTraits(t *testing.T) {
	t.Parallel()
	traits, err := structpb.NewStruct(map[string]any{
		"name": "Acme", "plan": "pro", "settings": map[string]any{"branding": map[string]any{"primary_color": "#f00"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := engine.TenantPatchFromTraits(traits)
	if p.Name == nil || *p.Name != "Acme" || p.Settings.GetFields()["branding"] == nil ||
		len(p.Properties.GetFields()) != 1 || p.Properties.GetFields()["plan"].GetStringValue() != "pro" {
		t.Fatalf("patch = name %v, settings %v, properties %v", p.Name, p.Settings, p.Properties)
	}
	odd, err := structpb.NewStruct(map[string]any{"name": 42, "settings": "none"})
	if err != nil {
		t.Fatal(err)
	}
	p = engine.TenantPatchFromTraits(odd)
	if p.Name != nil || p.Settings != nil || len(p.Properties.GetFields()) != 2 {
		t.Fatalf("a number name and a string settings: patch = name %v, settings %v, properties %v", p.Name, p.Settings, p.Properties)
	}
}
