package main

import (
	"slices"
	"strings"
	"testing"
)

// TestCLIResources runs hark tenants, objects and audiences against a real
// server: set/get/list/delete, subscribe/unsubscribe/subscriptions both
// ways, add/remove/members, -o json, and the errors a user sees.
func TestCLIResources(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	env := s.env
	dev := []string{"--env", "development"}
	with := func(args ...string) []string { return append(args, dev...) }
	mustHark(t, env, with("users", "identify", "u1")...)
	mustHark(t, env, with("users", "identify", "u2")...)

	// tenants
	wantContains(t, "tenants set", mustHark(t, env, with("tenants", "set", "acme", "--name", "Acme Inc.", "--set", "plan=pro",
		"--settings", `{"branding":{"primary_color":"#f00"}}`)...), "Acme Inc.", `"plan": "pro"`, "primary_color")
	var tenant struct {
		ID         string         `json:"id"`
		Name       string         `json:"name"`
		Properties map[string]any `json:"properties"`
	}
	harkJSON(t, env, &tenant, with("tenants", "set", "acme", "--set-json", "seats=5")...)
	if tenant.ID != "acme" || tenant.Name != "Acme Inc." || tenant.Properties["plan"] != "pro" || tenant.Properties["seats"] != 5.0 {
		t.Fatalf("tenants set merges: %+v", tenant)
	}
	wantContains(t, "tenants get", mustHark(t, env, with("tenants", "get", "acme")...), "Acme Inc.", "seats")
	mustHark(t, env, with("tenants", "set", "globex")...)
	var tenants struct {
		Tenants []struct{ ID string } `json:"tenants"`
	}
	harkJSON(t, env, &tenants, with("tenants", "list")...)
	if len(tenants.Tenants) != 2 || tenants.Tenants[0].ID != "acme" {
		t.Fatalf("tenants list -o json: %+v", tenants)
	}
	wantContains(t, "tenants list", mustHark(t, env, with("tenants", "list")...), "NAME", "acme", "globex")
	wantContains(t, "tenants delete", mustHark(t, env, with("tenants", "delete", "globex")...), "Deleted tenant globex")
	wantContains(t, "tenants get deleted", wantFail(t, env, with("tenants", "get", "globex")...), "not found")

	// objects and subscriptions
	wantContains(t, "objects set", mustHark(t, env, with("objects", "set", "projects", "apollo", "--set", "name=Apollo")...), "projects", "apollo", `"name": "Apollo"`)
	mustHark(t, env, with("objects", "set", "projects", "gemini")...)
	wantContains(t, "objects list", mustHark(t, env, with("objects", "list", "projects")...), "COLLECTION", "apollo", "gemini")
	wantContains(t, "objects get", mustHark(t, env, with("objects", "get", "projects", "apollo")...), "Apollo")
	wantContains(t, "objects subscribe", mustHark(t, env, with("objects", "subscribe", "projects", "apollo", "u1", "u2", "--set", "role=watcher")...), "RECIPIENT", "u1", "u2")
	mustHark(t, env, with("objects", "subscribe", "projects", "gemini", "u1")...)
	var subs struct {
		Subscriptions []struct {
			ObjectID   string         `json:"objectId"`
			Recipient  string         `json:"recipient"`
			Properties map[string]any `json:"properties"`
		} `json:"subscriptions"`
	}
	harkJSON(t, env, &subs, with("objects", "subscriptions", "projects", "apollo")...)
	if len(subs.Subscriptions) != 2 || subs.Subscriptions[0].Recipient != "u1" || subs.Subscriptions[0].Properties["role"] != "watcher" {
		t.Fatalf("objects subscriptions -o json: %+v", subs)
	}
	harkJSON(t, env, &subs, with("objects", "subscriptions", "--user", "u1")...)
	if len(subs.Subscriptions) != 2 || subs.Subscriptions[0].ObjectID != "apollo" || subs.Subscriptions[1].ObjectID != "gemini" {
		t.Fatalf("objects subscriptions --user -o json: %+v", subs)
	}
	wantContains(t, "objects unsubscribe", mustHark(t, env, with("objects", "unsubscribe", "projects", "apollo", "u2")...), "Unsubscribed u2 from projects/apollo")
	out := mustHark(t, env, with("objects", "subscriptions", "projects", "apollo")...)
	if strings.Contains(out, "u2") {
		t.Fatalf("u2 still subscribed:\n%s", out)
	}
	wantContains(t, "subscribe an unknown user", wantFail(t, env, with("objects", "subscribe", "projects", "apollo", "ghost")...), "recipients[0]", "not identified")
	wantContains(t, "objects delete", mustHark(t, env, with("objects", "delete", "projects", "gemini")...), "Deleted object projects/gemini")
	harkJSON(t, env, &subs, with("objects", "subscriptions", "--user", "u1")...)
	if len(subs.Subscriptions) != 1 {
		t.Fatalf("after deleting gemini, u1's subscriptions: %+v", subs)
	}
	wantContains(t, "bad collection", wantFail(t, env, with("objects", "set", "$users", "x")...), "collection")
	wantContains(t, "subscriptions usage", wantFail(t, env, with("objects", "subscriptions", "projects")...), "usage: hark objects subscriptions")

	// audiences
	wantContains(t, "audiences add", mustHark(t, env, with("audiences", "add", "beta", "u1", "u2")...), "AUDIENCE", "beta", "u2")
	mustHark(t, env, with("audiences", "add", "beta", "u1", "--tenant", "acme")...)
	var members struct {
		Members []struct {
			UserID string `json:"userId"`
			Tenant string `json:"tenant"`
		} `json:"members"`
	}
	harkJSON(t, env, &members, with("audiences", "members", "beta")...)
	if len(members.Members) != 3 || members.Members[1].Tenant != "acme" {
		t.Fatalf("audiences members -o json: %+v", members)
	}
	wantContains(t, "audiences remove", mustHark(t, env, with("audiences", "remove", "beta", "u1")...), "Removed u1 from audience beta")
	harkJSON(t, env, &members, with("audiences", "members", "beta")...)
	if len(members.Members) != 2 || members.Members[0].Tenant != "acme" {
		t.Fatalf("after remove: %+v", members)
	}
	wantContains(t, "audiences members", mustHark(t, env, with("audiences", "members", "beta")...), "TENANT", "acme")
	mustHark(t, env, with("audiences", "add", "alpha", "u2")...)
	wantLine(t, mustHark(t, env, with("audiences", "list")...), "alpha")
	var audiences struct {
		Keys []string `json:"keys"`
	}
	harkJSON(t, env, &audiences, with("audiences", "list")...)
	if !slices.Equal(audiences.Keys, []string{"alpha", "beta"}) {
		t.Fatalf("audiences list -o json: %+v, want alpha and beta", audiences)
	}

	// Deleting a user removes their subscriptions and memberships.
	mustHark(t, env, with("users", "delete", "u1")...)
	harkJSON(t, env, &members, with("audiences", "members", "beta")...)
	if len(members.Members) != 1 || members.Members[0].UserID != "u2" {
		t.Fatalf("after deleting u1: %+v", members)
	}
	harkJSON(t, env, &subs, with("objects", "subscriptions", "projects", "apollo")...)
	if len(subs.Subscriptions) != 0 {
		t.Fatalf("after deleting u1, apollo's subscriptions: %+v", subs)
	}
	wantContains(t, "help", mustHark(t, env, "objects", "--help"), "subscribe", "unsubscribe", "subscriptions", "Deleting an object deletes its subscriptions")
}
