package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
	"github.com/harkhq/hark/server"
)

// Tenants, objects, subscriptions and audiences (DESIGN §9), over REST,
// Connect and gRPC.

// identify creates users over REST.
func (h *harness) identify(t *testing.T, env string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/"+env+"/users/"+id, `{}`), http.StatusOK)
	}
}

// setObject creates an object over REST.
func (h *harness) setObject(t *testing.T, env, collection, id, body string) *harkv1.Object {
	t.Helper()
	r := h.rest(t, http.MethodPut, "/v1/environments/"+env+"/objects/"+collection+"/"+id, body)
	wantStatus(t, r, http.StatusOK)
	return decode(t, r, &harkv1.Object{})
}

// subscribers lists every recipient subscribed to an object over Connect.
func (h *harness) subscribers(t *testing.T, env, collection, id string) []string {
	t.Helper()
	res := mustCall(t, h.objects().ListSubscriptions, &harkv1.ListSubscriptionsRequest{Environment: env, Collection: collection, Id: id, PageSize: 1000})
	var out []string
	for _, s := range res.GetSubscriptions() {
		out = append(out, s.GetRecipient())
	}
	return out
}

// userSubscriptions lists the "collection/id" of every object a user is
// subscribed to, over REST.
func (h *harness) userSubscriptions(t *testing.T, env, user string) []string {
	t.Helper()
	r := h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/"+user+"/subscriptions", "")
	wantStatus(t, r, http.StatusOK)
	var out []string
	for _, s := range decode(t, r, &harkv1.ListUserSubscriptionsResponse{}).GetSubscriptions() {
		out = append(out, s.GetCollection()+"/"+s.GetObjectId())
	}
	return out
}

// members lists an audience's members as "user@tenant" over Connect.
func (h *harness) members(t *testing.T, env, key string) []string {
	t.Helper()
	res := mustCall(t, h.audiences().ListAudienceMembers, &harkv1.ListAudienceMembersRequest{Environment: env, Key: key, PageSize: 1000})
	var out []string
	for _, m := range res.GetMembers() {
		out = append(out, m.GetUserId()+"@"+m.GetTenant())
	}
	return out
}

// wantList fails unless got equals want.
func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func TestTenants(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	base := "/v1/environments/development/tenants/"

	t.Run("set merges, get, delete over REST", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodPut, base+"acme", `{"name":"Acme","properties":{"plan":"pro","seats":5},"settings":{"branding":{"primaryColor":"#f00"}}}`)
		wantStatus(t, r, http.StatusOK)
		first := decode(t, r, &harkv1.Tenant{})
		if first.GetId() != "acme" || first.GetEnvironment() != "development" || first.GetName() != "Acme" ||
			field(first.GetProperties(), "seats").GetNumberValue() != 5 || first.GetCreatedAt() == nil {
			t.Fatalf("tenant = %v", first)
		}
		// A second set merges properties and keeps the name and settings.
		r = h.rest(t, http.MethodPut, base+"acme", `{"properties":{"plan":"enterprise","region":"eu"}}`)
		wantStatus(t, r, http.StatusOK)
		got := decode(t, r, &harkv1.Tenant{})
		props := got.GetProperties()
		if got.GetName() != "Acme" || field(props, "plan").GetStringValue() != "enterprise" || field(props, "seats").GetNumberValue() != 5 ||
			field(props, "region").GetStringValue() != "eu" || field(got.GetSettings(), "branding", "primaryColor").GetStringValue() != "#f00" {
			t.Fatalf("merged tenant = %v", got)
		}
		if !got.GetCreatedAt().AsTime().Equal(first.GetCreatedAt().AsTime()) {
			t.Fatalf("createdAt changed: %v → %v", first.GetCreatedAt(), got.GetCreatedAt())
		}
		r = h.rest(t, http.MethodGet, base+"acme", "")
		wantStatus(t, r, http.StatusOK)
		if fetched := decode(t, r, &harkv1.Tenant{}); !proto.Equal(fetched, got) {
			t.Fatalf("GET = %v, want %v", fetched, got)
		}
		wantStatus(t, h.rest(t, http.MethodDelete, base+"acme", ""), http.StatusOK)
		wantStatus(t, h.rest(t, http.MethodGet, base+"acme", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodDelete, base+"acme", ""), http.StatusNotFound)
	})

	t.Run("over connect and grpc", func(t *testing.T) {
		t.Parallel()
		set := mustCall(t, h.tenants().SetTenant, &harkv1.SetTenantRequest{Environment: "development", Id: "connect-t", Name: proto.String("Connect Co")}).GetTenant()
		c := harkv1.NewTenantServiceClient(h.grpcConn(t))
		ctx := grpcCtx(t, h.admin())
		got, err := c.GetTenant(ctx, &harkv1.GetTenantRequest{Environment: "development", Id: "connect-t"})
		if err != nil || !proto.Equal(got.GetTenant(), set) {
			t.Fatalf("gRPC GetTenant = %v, %v; want %v", got, err, set)
		}
		if _, err := c.DeleteTenant(ctx, &harkv1.DeleteTenantRequest{Environment: "development", Id: "connect-t"}); err != nil {
			t.Fatalf("gRPC DeleteTenant: %v", err)
		}
		_, err = c.GetTenant(ctx, &harkv1.GetTenantRequest{Environment: "development", Id: "connect-t"})
		if code := grpcstatus.Code(err); code != codes.NotFound {
			t.Fatalf("gRPC GetTenant after delete: %v, want NotFound", err)
		}
		_, err = call(t, h.tenants().GetTenant, &harkv1.GetTenantRequest{Environment: "development", Id: "connect-t"})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("pages in id order, per environment", func(t *testing.T) {
		t.Parallel()
		for i := range 5 {
			mustCall(t, h.tenants().SetTenant, &harkv1.SetTenantRequest{Environment: "production", Id: fmt.Sprintf("page-%d", i)})
		}
		var ids []string
		token := ""
		for pages := 0; ; pages++ {
			res := mustCall(t, h.tenants().ListTenants, &harkv1.ListTenantsRequest{Environment: "production", PageSize: 2, PageToken: token})
			if len(res.GetTenants()) > 2 || pages > 3 {
				t.Fatalf("page %d has %d tenants", pages, len(res.GetTenants()))
			}
			for _, tn := range res.GetTenants() {
				ids = append(ids, tn.GetId())
			}
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		wantList(t, "tenant ids", ids, "page-0", "page-1", "page-2", "page-3", "page-4")
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/development/tenants/page-0", ""), http.StatusNotFound)
	})

	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		long := strings.Repeat("x", 256)
		for name, tc := range map[string]struct {
			req   *harkv1.SetTenantRequest
			field string
		}{
			"empty id":      {&harkv1.SetTenantRequest{Environment: "development"}, "id"},
			"long id":       {&harkv1.SetTenantRequest{Environment: "development", Id: long}, "id"},
			"NUL in id":     {&harkv1.SetTenantRequest{Environment: "development", Id: "a\x00b"}, "id"},
			"long name":     {&harkv1.SetTenantRequest{Environment: "development", Id: "n", Name: proto.String(strings.Repeat("n", 1000))}, "name"},
			"huge property": {&harkv1.SetTenantRequest{Environment: "development", Id: "p", Properties: bigStruct(t, 70<<10)}, "properties"},
			"huge settings": {&harkv1.SetTenantRequest{Environment: "development", Id: "s", Settings: bigStruct(t, 70<<10)}, "settings"},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := call(t, h.tenants().SetTenant, tc.req)
				wantCode(t, err, connect.CodeInvalidArgument)
				wantViolation(t, connectViolations(t, err), tc.field)
				if tc.req.GetId() != "" && !strings.Contains(tc.req.GetId(), "\x00") && len(tc.req.GetId()) < 256 {
					_, err := call(t, h.tenants().GetTenant, &harkv1.GetTenantRequest{Environment: "development", Id: tc.req.GetId()})
					wantCode(t, err, connect.CodeNotFound) // nothing written
				}
			})
		}
		r := h.rest(t, http.MethodPut, base+"typo", `{"nmae":"Acme"}`)
		wantStatus(t, r, http.StatusBadRequest)
		wantStatus(t, h.restAs(t, "", http.MethodGet, base+"x", ""), http.StatusUnauthorized)
		_, err := call(t, harkv1connect.NewTenantServiceClient(h.http, h.base).ListTenants, &harkv1.ListTenantsRequest{Environment: "development"})
		wantCode(t, err, connect.CodeUnauthenticated)
		wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/nope/tenants/x", `{}`), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/tenants", ""), http.StatusNotFound)
		r = h.rest(t, http.MethodGet, "/v1/environments/development/tenants?pageSize=-1", "")
		wantStatus(t, r, http.StatusBadRequest)
		wantViolation(t, restViolations(t, r), "pageSize")
	})
}

// bigStruct is a Struct of about n bytes.
func bigStruct(t *testing.T, n int) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(map[string]any{"blob": strings.Repeat("b", n)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestObjectsAndSubscriptions(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	const env = "development"
	objPath := func(coll, id string) string { return "/v1/environments/" + env + "/objects/" + coll + "/" + id }

	t.Run("set merges, get, list by collection, delete", func(t *testing.T) {
		t.Parallel()
		first := h.setObject(t, env, "projects", "p1", `{"properties":{"name":"Apollo","stage":"alpha"}}`)
		if first.GetCollection() != "projects" || first.GetId() != "p1" || first.GetEnvironment() != env || first.GetCreatedAt() == nil {
			t.Fatalf("object = %v", first)
		}
		got := h.setObject(t, env, "projects", "p1", `{"properties":{"stage":"beta"}}`)
		if field(got.GetProperties(), "name").GetStringValue() != "Apollo" || field(got.GetProperties(), "stage").GetStringValue() != "beta" {
			t.Fatalf("merged object = %v", got)
		}
		h.setObject(t, env, "projects", "p2", `{}`)
		h.setObject(t, env, "repos", "p1", `{}`) // same id, other collection
		c := harkv1.NewObjectServiceClient(h.grpcConn(t))
		ctx := grpcCtx(t, h.admin())
		list, err := c.ListObjects(ctx, &harkv1.ListObjectsRequest{Environment: env, Collection: "projects"})
		if err != nil {
			t.Fatalf("gRPC ListObjects: %v", err)
		}
		var ids []string
		for _, o := range list.GetObjects() {
			ids = append(ids, o.GetCollection()+"/"+o.GetId())
		}
		wantList(t, "projects", ids, "projects/p1", "projects/p2")
		fetched := mustCall(t, h.objects().GetObject, &harkv1.GetObjectRequest{Environment: env, Collection: "projects", Id: "p1"}).GetObject()
		if !proto.Equal(fetched, got) {
			t.Fatalf("Connect GetObject = %v, want %v", fetched, got)
		}
		wantStatus(t, h.rest(t, http.MethodDelete, objPath("projects", "p2"), ""), http.StatusOK)
		wantStatus(t, h.rest(t, http.MethodGet, objPath("projects", "p2"), ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodDelete, objPath("projects", "p2"), ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, objPath("repos", "p1"), ""), http.StatusOK)
	})

	t.Run("subscriptions both ways; unsubscribe", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "sub-a", "sub-b", "sub-c")
		h.setObject(t, env, "alerts", "cpu", `{}`)
		h.setObject(t, env, "alerts", "disk", `{}`)
		r := h.rest(t, http.MethodPost, objPath("alerts", "cpu")+"/subscriptions", `{"recipients":["sub-b","sub-a","sub-b"],"properties":{"threshold":90}}`)
		wantStatus(t, r, http.StatusOK)
		added := decode(t, r, &harkv1.AddSubscriptionsResponse{}).GetSubscriptions()
		if len(added) != 3 || added[0].GetRecipient() != "sub-b" || field(added[1].GetProperties(), "threshold").GetNumberValue() != 90 ||
			added[1].GetCollection() != "alerts" || added[1].GetObjectId() != "cpu" {
			t.Fatalf("added = %v", added)
		}
		mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "alerts", Id: "disk", Recipients: []string{"sub-a"}})
		wantList(t, "cpu subscribers", h.subscribers(t, env, "alerts", "cpu"), "sub-a", "sub-b")
		wantList(t, "sub-a subscriptions", h.userSubscriptions(t, env, "sub-a"), "alerts/cpu", "alerts/disk")
		c := harkv1.NewObjectServiceClient(h.grpcConn(t))
		res, err := c.ListUserSubscriptions(grpcCtx(t, h.admin()), &harkv1.ListUserSubscriptionsRequest{Environment: env, UserId: "sub-b"})
		if err != nil || len(res.GetSubscriptions()) != 1 || res.GetSubscriptions()[0].GetObjectId() != "cpu" {
			t.Fatalf("gRPC ListUserSubscriptions = %v, %v", res, err)
		}

		// Unsubscribing over REST (DELETE with a body, as Knock's); a
		// recipient not subscribed is ignored.
		r = h.rest(t, http.MethodDelete, objPath("alerts", "cpu")+"/subscriptions", `{"recipients":["sub-a","sub-c"]}`)
		wantStatus(t, r, http.StatusOK)
		wantList(t, "cpu subscribers after unsubscribe", h.subscribers(t, env, "alerts", "cpu"), "sub-b")
		wantList(t, "sub-a subscriptions after unsubscribe", h.userSubscriptions(t, env, "sub-a"), "alerts/disk")
	})

	t.Run("deleting an object deletes its subscriptions", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "od-1", "od-2")
		h.setObject(t, env, "teams", "red", `{}`)
		h.setObject(t, env, "teams", "blue", `{}`)
		for _, o := range []string{"red", "blue"} {
			mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "teams", Id: o, Recipients: []string{"od-1", "od-2"}})
		}
		mustCall(t, h.objects().DeleteObject, &harkv1.DeleteObjectRequest{Environment: env, Collection: "teams", Id: "red"})
		wantList(t, "od-1 subscriptions", h.userSubscriptions(t, env, "od-1"), "teams/blue")
		wantList(t, "od-2 subscriptions", h.userSubscriptions(t, env, "od-2"), "teams/blue")
		// Set again, the object starts without subscribers.
		h.setObject(t, env, "teams", "red", `{}`)
		wantList(t, "red subscribers", h.subscribers(t, env, "teams", "red"))
	})

	t.Run("deleting a user deletes their subscriptions and memberships", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "ud-1", "ud-2")
		h.setObject(t, env, "boards", "b1", `{}`)
		mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "boards", Id: "b1", Recipients: []string{"ud-1", "ud-2"}})
		mustCall(t, h.audiences().AddAudienceMembers, &harkv1.AddAudienceMembersRequest{Environment: env, Key: "ud-aud", Members: []*harkv1.AudienceMemberRef{{UserId: "ud-1"}, {UserId: "ud-1", Tenant: "acme"}, {UserId: "ud-2"}}})
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/environments/"+env+"/users/ud-1", ""), http.StatusOK)
		wantList(t, "b1 subscribers", h.subscribers(t, env, "boards", "b1"), "ud-2")
		wantList(t, "ud-aud members", h.members(t, env, "ud-aud"), "ud-2@")
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/ud-1/subscriptions", ""), http.StatusNotFound)
		// Identified again, the user starts with nothing.
		h.identify(t, env, "ud-1")
		wantList(t, "ud-1 subscriptions", h.userSubscriptions(t, env, "ud-1"))
	})

	t.Run("subscriptions page by recipient", func(t *testing.T) {
		t.Parallel()
		var users []string
		for i := range 5 {
			users = append(users, fmt.Sprintf("pg-%d", i))
		}
		h.identify(t, env, users...)
		h.setObject(t, env, "topics", "paged", `{}`)
		mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "topics", Id: "paged", Recipients: users})
		var got []string
		token := ""
		for pages := 0; pages < 4; pages++ {
			res := mustCall(t, h.objects().ListSubscriptions, &harkv1.ListSubscriptionsRequest{Environment: env, Collection: "topics", Id: "paged", PageSize: 2, PageToken: token})
			for _, s := range res.GetSubscriptions() {
				got = append(got, s.GetRecipient())
			}
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		wantList(t, "paged subscribers", got, users...)
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "bad-1")
		h.setObject(t, env, "things", "t1", `{}`)
		add := func(coll, id string, recipients ...string) error {
			_, err := call(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: coll, Id: id, Recipients: recipients})
			return err
		}
		// An unknown user among known ones: a violation naming it, and the
		// known one is not subscribed either.
		err := add("things", "t1", "bad-1", "ghost")
		wantCode(t, err, connect.CodeInvalidArgument)
		wantList(t, "violations", connectViolations(t, err), "recipients[1]")
		wantList(t, "t1 subscribers", h.subscribers(t, env, "things", "t1"))

		wantCode(t, add("things", "missing", "bad-1"), connect.CodeNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, objPath("things", "missing")+"/subscriptions", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/ghost/subscriptions", ""), http.StatusNotFound)
		err = add("things", "t1")
		wantViolation(t, connectViolations(t, err), "recipients")
		_, err = call(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "things", Id: "t1", Recipients: []string{"bad-1"}, Properties: bigStruct(t, 5<<10)})
		wantCode(t, err, connect.CodeInvalidArgument)
		wantViolation(t, connectViolations(t, err), "properties")
		many := make([]string, 1001)
		for i := range many {
			many[i] = "bad-1"
		}
		err = add("things", "t1", many...)
		wantCode(t, err, connect.CodeInvalidArgument)
		wantViolation(t, connectViolations(t, err), "recipients")

		for _, coll := range []string{"$users", "a/b", "sp ace", strings.Repeat("c", 129)} {
			_, err := call(t, h.objects().SetObject, &harkv1.SetObjectRequest{Environment: env, Collection: coll, Id: "x"})
			wantCode(t, err, connect.CodeInvalidArgument)
			wantViolation(t, connectViolations(t, err), "collection")
		}
		_, err = call(t, h.objects().SetObject, &harkv1.SetObjectRequest{Environment: env, Collection: "things", Id: strings.Repeat("i", 256)})
		wantViolation(t, connectViolations(t, err), "id")
		_, err = call(t, h.objects().SetObject, &harkv1.SetObjectRequest{Environment: env, Collection: "things", Id: "big", Properties: bigStruct(t, 70<<10)})
		wantViolation(t, connectViolations(t, err), "properties")
		wantStatus(t, h.rest(t, http.MethodGet, objPath("things", "big"), ""), http.StatusNotFound)
		r := h.rest(t, http.MethodGet, "/v1/environments/"+env+"/objects/$bad", "")
		wantStatus(t, r, http.StatusBadRequest)
		wantViolation(t, restViolations(t, r), "collection")
		wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/nope/objects/things/x", `{}`), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodPost, objPath("things", "t1")+"/subscriptions", `{"recipient":["bad-1"]}`), http.StatusBadRequest)
	})
}

func TestAudiences(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	const env = "development"
	path := "/v1/environments/" + env + "/audiences/"

	t.Run("add, list, remove over REST, Connect and gRPC", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "m-1", "m-2", "m-3")
		r := h.rest(t, http.MethodPost, path+"vip/members", `{"members":[{"userId":"m-2"},{"userId":"m-1","tenant":"acme"},{"userId":"m-1"}]}`)
		wantStatus(t, r, http.StatusOK)
		added := decode(t, r, &harkv1.AddAudienceMembersResponse{}).GetMembers()
		if len(added) != 3 || added[0].GetAudienceKey() != "vip" || added[1].GetTenant() != "acme" || added[2].GetCreatedAt() == nil {
			t.Fatalf("added = %v", added)
		}
		// Adding a member again keeps it as it was.
		again := mustCall(t, h.audiences().AddAudienceMembers, &harkv1.AddAudienceMembersRequest{Environment: env, Key: "vip", Members: []*harkv1.AudienceMemberRef{{UserId: "m-2"}, {UserId: "m-3"}}}).GetMembers()
		if !proto.Equal(again[0], added[0]) {
			t.Fatalf("re-added member = %v, want %v", again[0], added[0])
		}
		wantList(t, "vip members", h.members(t, env, "vip"), "m-1@", "m-1@acme", "m-2@", "m-3@")

		c := harkv1.NewAudienceServiceClient(h.grpcConn(t))
		ctx := grpcCtx(t, h.admin())
		// Removing (m-1, no tenant) leaves (m-1, acme).
		if _, err := c.RemoveAudienceMembers(ctx, &harkv1.RemoveAudienceMembersRequest{Environment: env, Key: "vip", Members: []*harkv1.AudienceMemberRef{{UserId: "m-1"}, {UserId: "never"}}}); err != nil {
			t.Fatalf("gRPC RemoveAudienceMembers: %v", err)
		}
		wantStatus(t, h.rest(t, http.MethodDelete, path+"vip/members", `{"members":[{"userId":"m-3"}]}`), http.StatusOK)
		wantList(t, "vip members after remove", h.members(t, env, "vip"), "m-1@acme", "m-2@")

		// Paging.
		res, err := c.ListAudienceMembers(ctx, &harkv1.ListAudienceMembersRequest{Environment: env, Key: "vip", PageSize: 1})
		if err != nil || len(res.GetMembers()) != 1 || res.GetNextPageToken() == "" {
			t.Fatalf("page 1 = %v, %v", res, err)
		}
		res, err = c.ListAudienceMembers(ctx, &harkv1.ListAudienceMembersRequest{Environment: env, Key: "vip", PageSize: 1, PageToken: res.GetNextPageToken()})
		if err != nil || len(res.GetMembers()) != 1 || res.GetMembers()[0].GetUserId() != "m-2" || res.GetNextPageToken() != "" {
			t.Fatalf("page 2 = %v, %v", res, err)
		}
		// An audience nobody was added to lists nothing.
		wantList(t, "unknown audience", h.members(t, env, "nobody"))
	})

	t.Run("list audiences", func(t *testing.T) {
		t.Parallel()
		// An environment of its own: the other subtests add audiences.
		const own = "audiences"
		wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments", `{"slug":"`+own+`","name":"Audiences"}`), http.StatusOK)
		h.identify(t, own, "l-1", "l-2")
		list := func(query string) *harkv1.ListAudiencesResponse {
			t.Helper()
			r := h.rest(t, http.MethodGet, "/v1/environments/"+own+"/audiences"+query, "")
			wantStatus(t, r, http.StatusOK)
			return decode(t, r, &harkv1.ListAudiencesResponse{})
		}
		if got := list("").GetKeys(); len(got) != 0 {
			t.Fatalf("audiences of a new environment = %v, want none", got)
		}
		for _, add := range []struct{ key, body string }{
			{"b-aud", `{"members":[{"userId":"l-1"},{"userId":"l-2"},{"userId":"l-1","tenant":"t"}]}`},
			{"a-aud", `{"members":[{"userId":"l-2"}]}`},
			{"c.aud", `{"members":[{"userId":"l-1","tenant":"acme"}]}`},
			{"gone", `{"members":[{"userId":"l-1"}]}`},
		} {
			wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments/"+own+"/audiences/"+add.key+"/members", add.body), http.StatusOK)
		}
		// An audience whose last member is removed is gone.
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/environments/"+own+"/audiences/gone/members", `{"members":[{"userId":"l-1"}]}`), http.StatusOK)
		wantList(t, "audiences", list("").GetKeys(), "a-aud", "b-aud", "c.aud")
		// Pages of one, each key once although b-aud has three members.
		var paged []string
		for token, pages := "", 0; ; pages++ {
			if pages > 3 {
				t.Fatalf("audiences paging did not end: %v", paged)
			}
			res := list("?pageSize=1&pageToken=" + token)
			paged = append(paged, res.GetKeys()...)
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		wantList(t, "audiences paged", paged, "a-aud", "b-aud", "c.aud")
		res, err := harkv1.NewAudienceServiceClient(h.grpcConn(t)).ListAudiences(grpcCtx(t, h.admin()), &harkv1.ListAudiencesRequest{Environment: own, PageSize: 2})
		if err != nil || !slices.Equal(res.GetKeys(), []string{"a-aud", "b-aud"}) || res.GetNextPageToken() == "" {
			t.Fatalf("gRPC ListAudiences = %v, %v; want a-aud, b-aud and a next page", res, err)
		}
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nowhere/audiences", ""), http.StatusNotFound)
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		t.Parallel()
		h.identify(t, env, "am-1")
		add := func(key string, members ...*harkv1.AudienceMemberRef) error {
			_, err := call(t, h.audiences().AddAudienceMembers, &harkv1.AddAudienceMembersRequest{Environment: env, Key: key, Members: members})
			return err
		}
		err := add("bad-aud", &harkv1.AudienceMemberRef{UserId: "am-1"}, &harkv1.AudienceMemberRef{UserId: "ghost"}, &harkv1.AudienceMemberRef{UserId: "am-1", Tenant: "a\x00b"})
		wantCode(t, err, connect.CodeInvalidArgument)
		wantList(t, "violations", connectViolations(t, err), "members[1].userId", "members[2].tenant")
		wantList(t, "bad-aud members", h.members(t, env, "bad-aud"))
		wantViolation(t, connectViolations(t, add("bad/key", &harkv1.AudienceMemberRef{UserId: "am-1"})), "key")
		wantViolation(t, connectViolations(t, add("empty")), "members")
		many := make([]*harkv1.AudienceMemberRef, 1001)
		for i := range many {
			many[i] = &harkv1.AudienceMemberRef{UserId: "am-1"}
		}
		wantViolation(t, connectViolations(t, add("many", many...)), "members")
		wantStatus(t, h.restAs(t, "", http.MethodGet, path+"vip/members", ""), http.StatusUnauthorized)
		wantStatus(t, h.restAs(t, "", http.MethodGet, "/v1/environments/"+env+"/objects/things", ""), http.StatusUnauthorized)
		wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/nope/audiences/vip/members", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodPost, path+"vip/members", `{"members":[{"user":{"id":"am-1"}}]}`), http.StatusBadRequest)
	})
}

// TestBackupRestoreResources checks that tenants, objects, subscriptions
// (both indexes) and audience members come back from a backup.
func TestBackupRestoreResources(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	const env = "development"
	h.identify(t, env, "bk-1")
	mustCall(t, h.tenants().SetTenant, &harkv1.SetTenantRequest{Environment: env, Id: "bk-tenant", Name: proto.String("Backed")})
	h.setObject(t, env, "projects", "bk-p", `{"properties":{"k":"v"}}`)
	mustCall(t, h.objects().AddSubscriptions, &harkv1.AddSubscriptionsRequest{Environment: env, Collection: "projects", Id: "bk-p", Recipients: []string{"bk-1"}})
	mustCall(t, h.audiences().AddAudienceMembers, &harkv1.AddAudienceMembersRequest{Environment: env, Key: "bk-aud", Members: []*harkv1.AudienceMemberRef{{UserId: "bk-1", Tenant: "bk-tenant"}}})

	res := h.send(t, h.admin(), http.MethodGet, server.BackupPath, "", nil)
	wantStatus(t, res, http.StatusOK)
	r := startServerWith(t, harnessOptions{before: func(t *testing.T, r *harness) {
		if err := server.Restore(r.dir, bytes.NewReader(res.body), nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
	}})
	if got := mustCall(t, r.tenants().GetTenant, &harkv1.GetTenantRequest{Environment: env, Id: "bk-tenant"}).GetTenant(); got.GetName() != "Backed" {
		t.Fatalf("restored tenant = %v", got)
	}
	if got := mustCall(t, r.objects().GetObject, &harkv1.GetObjectRequest{Environment: env, Collection: "projects", Id: "bk-p"}).GetObject(); field(got.GetProperties(), "k").GetStringValue() != "v" {
		t.Fatalf("restored object = %v", got)
	}
	wantList(t, "restored subscribers", r.subscribers(t, env, "projects", "bk-p"), "bk-1")
	wantList(t, "restored user subscriptions", r.userSubscriptions(t, env, "bk-1"), "projects/bk-p")
	wantList(t, "restored members", r.members(t, env, "bk-aud"), "bk-1@bk-tenant")
	// The reverse indexes came back too: deleting the user empties both.
	mustCall(t, r.users().DeleteUser, &harkv1.DeleteUserRequest{Environment: env, Id: "bk-1"})
	wantList(t, "subscribers after delete", r.subscribers(t, env, "projects", "bk-p"))
	wantList(t, "members after delete", r.members(t, env, "bk-aud"))
}
