package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// getUser reads a user over Connect; it must exist.
func (h *harness) getUser(t *testing.T, env, id string) *harkv1.User {
	t.Helper()
	return mustCall(t, h.users().GetUser, &harkv1.GetUserRequest{Environment: env, Id: id}).GetUser()
}

// wantNoUser fails unless env has no user id, over Connect and REST.
func (h *harness) wantNoUser(t *testing.T, env, id string) {
	t.Helper()
	_, err := call(t, h.users().GetUser, &harkv1.GetUserRequest{Environment: env, Id: id})
	wantCode(t, err, connect.CodeNotFound)
	wantStatus(t, h.rest(t, http.MethodGet, "/v1/environments/"+env+"/users/"+id, ""), http.StatusNotFound)
}

// identifyAction returns the one IDENTIFY_USER action of a logged event.
func identifyAction(t *testing.T, ev *harkv1.SourceEvent) *harkv1.Action {
	t.Helper()
	var found []*harkv1.Action
	for _, a := range ev.GetActions() {
		if a.GetType() == harkv1.ActionType_ACTION_TYPE_IDENTIFY_USER {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		t.Fatalf("event %s actions = %v, want one IDENTIFY_USER", ev.GetId(), ev.GetActions())
	}
	return found[0]
}

// propertyKeys returns the sorted keys of a user's properties.
func propertyKeys(u *harkv1.User) []string {
	var keys []string
	for k := range u.GetProperties().GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---------------------------------------------------------------------------
// Identify from events (DESIGN §4 "Identify").
// ---------------------------------------------------------------------------

func TestIdentify(t *testing.T) {
	t.Parallel()
	h := startServer(t)
	// One source with identify on in development; production keeps the
	// default (off).
	src := h.createSource(t, "Identify")
	se := h.patchSourceEnv(t, src.GetId(), "development", `{"identifyEnabled":true}`)
	if !se.GetIdentifyEnabled() {
		t.Fatalf("identifyEnabled not set: %v", se)
	}
	dev := devURL(t, src)
	prod := envByName(t, src, "production").GetIngestUrl()

	t.Run("creates the user with mapped fields and properties, then merges", func(t *testing.T) {
		t.Parallel()
		body := `{"type":"identify","userId":"map-1","messageId":"i-1","traits":{
			"name":"Peter Gibbons","email":"peter@example.com","phone":"+1 555 0100",
			"avatar":"https://example.com/p.png","locale":"en-US","timezone":"America/Chicago",
			"plan":"premium","logins":5,"vip":true,"tags":["a","b"],
			"address":{"street":"6th St","city":"San Francisco","geo":{"lat":37.7}}}}`
		re := h.deliverOne(t, dev, []byte(body))
		if re.GetStatus() != statusProcessed {
			t.Fatalf("identify = %v, want PROCESSED", re)
		}
		act := identifyAction(t, h.getEvent(t, "development", re.GetId()))
		if act.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS || act.GetUserId() != "map-1" {
			t.Fatalf("identify action = %v, want SUCCESS for map-1", act)
		}

		u := h.getUser(t, "development", "map-1")
		want := &harkv1.User{
			Id: "map-1", Environment: "development",
			Name: "Peter Gibbons", Email: "peter@example.com", PhoneNumber: "+1 555 0100",
			Avatar: "https://example.com/p.png", Locale: "en-US", Timezone: "America/Chicago",
		}
		got := proto.CloneOf(u)
		got.Properties, got.CreatedAt, got.UpdatedAt = nil, nil, nil
		if !proto.Equal(got, want) {
			t.Fatalf("user fields = %v, want %v", got, want)
		}
		if u.GetCreatedAt() == nil || u.GetUpdatedAt() == nil {
			t.Fatalf("user %v lacks createdAt/updatedAt", u)
		}
		// Every other trait is a property; the mapped ones are not.
		if keys, want := propertyKeys(u), []string{"address", "logins", "plan", "tags", "vip"}; !slices.Equal(keys, want) {
			t.Fatalf("property keys = %q, want %q", keys, want)
		}
		props := u.GetProperties()
		if field(props, "plan").GetStringValue() != "premium" || field(props, "logins").GetNumberValue() != 5 || !field(props, "vip").GetBoolValue() {
			t.Fatalf("properties = %v, want plan premium, logins 5, vip true", props)
		}
		if field(props, "address", "city").GetStringValue() != "San Francisco" || field(props, "address", "geo", "lat").GetNumberValue() != 37.7 {
			t.Fatalf("properties.address = %v, want the nested object kept", field(props, "address"))
		}
		if n := len(field(props, "tags").GetListValue().GetValues()); n != 2 {
			t.Fatalf("properties.tags = %v, want 2 items", field(props, "tags"))
		}

		// A later identify with one trait merges: the rest stays.
		h.deliverOne(t, dev, []byte(`{"type":"identify","userId":"map-1","traits":{"plan":"enterprise"}}`))
		merged := h.getUser(t, "development", "map-1")
		if field(merged.GetProperties(), "plan").GetStringValue() != "enterprise" {
			t.Fatalf("plan after merge = %v, want enterprise", field(merged.GetProperties(), "plan"))
		}
		if merged.GetName() != "Peter Gibbons" || merged.GetEmail() != "peter@example.com" || merged.GetPhoneNumber() != "+1 555 0100" ||
			merged.GetTimezone() != "America/Chicago" || field(merged.GetProperties(), "logins").GetNumberValue() != 5 ||
			field(merged.GetProperties(), "address", "city").GetStringValue() != "San Francisco" {
			t.Fatalf("user after a one-trait identify = %v, want everything else kept", merged)
		}
		if !proto.Equal(merged.GetCreatedAt(), u.GetCreatedAt()) {
			t.Fatalf("createdAt changed on merge: %v → %v", u.GetCreatedAt(), merged.GetCreatedAt())
		}
		if merged.GetUpdatedAt().AsTime().Before(u.GetUpdatedAt().AsTime()) {
			t.Fatalf("updatedAt went back on merge: %v → %v", u.GetUpdatedAt(), merged.GetUpdatedAt())
		}

		// A field trait overwrites its field.
		h.deliverOne(t, dev, []byte(`{"type":"identify","userId":"map-1","traits":{"email":"new@example.com"}}`))
		if got := h.getUser(t, "development", "map-1"); got.GetEmail() != "new@example.com" || got.GetName() != "Peter Gibbons" {
			t.Fatalf("after an email identify = %v, want the new email and the old name", got)
		}
	})

	t.Run("traits under context.traits", func(t *testing.T) {
		t.Parallel()
		// Segment's spec allows identify traits in context.traits when there
		// are none at the top level.
		h.deliverOne(t, dev, []byte(`{"type":"identify","userId":"ctx-1","context":{"traits":{"name":"Ctx User","team":"blue"}}}`))
		u := h.getUser(t, "development", "ctx-1")
		if u.GetName() != "Ctx User" || field(u.GetProperties(), "team").GetStringValue() != "blue" {
			t.Fatalf("user = %v, want name and team from context.traits", u)
		}
	})

	t.Run("without userId the action is skipped", func(t *testing.T) {
		t.Parallel()
		re := h.deliverOne(t, dev, []byte(`{"type":"identify","anonymousId":"anon-77","traits":{"name":"Nobody"}}`))
		if re.GetStatus() != statusProcessed {
			t.Fatalf("anonymous identify = %v, want PROCESSED", re)
		}
		ev := h.getEvent(t, "development", re.GetId())
		act := identifyAction(t, ev)
		if act.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SKIPPED || act.GetReason() == "" {
			t.Fatalf("identify action = %v, want SKIPPED with a reason", act)
		}
		if !strings.Contains(strings.ToLower(act.GetReason()), "userid") {
			t.Errorf("reason %q does not mention the missing userId", act.GetReason())
		}
		h.wantNoUser(t, "development", "anon-77")
	})

	t.Run("off in production by default", func(t *testing.T) {
		t.Parallel()
		re := h.deliverOne(t, prod, []byte(`{"type":"identify","userId":"prod-1","traits":{"name":"Prod User"}}`))
		if re.GetStatus() != statusProcessed {
			t.Fatalf("identify = %v, want PROCESSED (logged)", re)
		}
		act := identifyAction(t, h.getEvent(t, "production", re.GetId()))
		if act.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SKIPPED || act.GetReason() != "identify handling is off" {
			t.Fatalf("identify action = %v, want SKIPPED \"identify handling is off\"", act)
		}
		h.wantNoUser(t, "production", "prod-1")
		h.wantNoUser(t, "development", "prod-1")
	})

	t.Run("off in development by default", func(t *testing.T) {
		t.Parallel()
		plain := h.createSource(t, "Identify off")
		re := h.deliverOne(t, devURL(t, plain), []byte(`{"type":"identify","userId":"off-1","traits":{"name":"Off"}}`))
		act := identifyAction(t, h.getEvent(t, "development", re.GetId()))
		if act.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SKIPPED || act.GetReason() != "identify handling is off" {
			t.Fatalf("identify action = %v, want SKIPPED \"identify handling is off\"", act)
		}
		h.wantNoUser(t, "development", "off-1")
	})

	t.Run("other event types identify nobody", func(t *testing.T) {
		t.Parallel()
		re := h.deliverOne(t, dev, []byte(`{"type":"track","event":"Seen","userId":"track-only","traits":{"name":"X"}}`))
		if acts := h.getEvent(t, "development", re.GetId()).GetActions(); len(acts) != 0 {
			t.Fatalf("track actions = %v, want none", acts)
		}
		h.wantNoUser(t, "development", "track-only")
	})

	t.Run("identifies in one batch apply in order", func(t *testing.T) {
		t.Parallel()
		body := `{"batch":[
			{"type":"identify","userId":"order-1","traits":{"name":"First","plan":"a"}},
			{"type":"track","event":"Between","userId":"order-1"},
			{"type":"identify","userId":"order-1","traits":{"plan":"b","email":"o@example.com"}},
			{"type":"identify","userId":"order-2","traits":{"plan":"z"}},
			{"type":"identify","userId":"order-2","traits":{"plan":"y"}}
		]}`
		res := h.mustDeliver(t, dev, []byte(body), 5)
		for _, i := range []int{0, 2, 3, 4} {
			act := identifyAction(t, h.getEvent(t, "development", res.GetEvents()[i].GetId()))
			if act.GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SUCCESS {
				t.Fatalf("event %d identify action = %v, want SUCCESS", i, act)
			}
		}
		u := h.getUser(t, "development", "order-1")
		if u.GetName() != "First" || u.GetEmail() != "o@example.com" || field(u.GetProperties(), "plan").GetStringValue() != "b" {
			t.Fatalf("order-1 = %v, want name First, email o@example.com, plan b (the later identify last)", u)
		}
		if got := field(h.getUser(t, "development", "order-2").GetProperties(), "plan").GetStringValue(); got != "y" {
			t.Fatalf("order-2 plan = %q, want y (the later identify last)", got)
		}
	})

	t.Run("per environment", func(t *testing.T) {
		t.Parallel()
		both := h.createSource(t, "Both")
		for _, env := range []string{"development", "production"} {
			h.patchSourceEnv(t, both.GetId(), env, `{"identifyEnabled":true}`)
			h.deliverOne(t, envByName(t, both, env).GetIngestUrl(), fmt.Appendf(nil, `{"type":"identify","userId":"env-1","traits":{"name":%q}}`, env))
		}
		for _, env := range []string{"development", "production"} {
			if u := h.getUser(t, env, "env-1"); u.GetName() != env || u.GetEnvironment() != env {
				t.Fatalf("%s user = %v, want name and environment %s", env, u, env)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Users API (DESIGN §5a), over Connect and REST.
// ---------------------------------------------------------------------------

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	h := startServer(t)

	t.Run("upsert get delete over rest", func(t *testing.T) {
		t.Parallel()
		path := "/v1/environments/development/users/rest-1"
		r := h.rest(t, http.MethodPut, path, `{"name":"Ann","email":"ann@example.com","properties":{"plan":"free","seats":3,"nested":{"a":1}}}`)
		wantStatus(t, r, http.StatusOK)
		created := decode(t, r, &harkv1.User{}) // response_body: user
		if created.GetId() != "rest-1" || created.GetEnvironment() != "development" || created.GetName() != "Ann" ||
			created.GetEmail() != "ann@example.com" || field(created.GetProperties(), "seats").GetNumberValue() != 3 ||
			created.GetCreatedAt() == nil || created.GetUpdatedAt() == nil {
			t.Fatalf("created user = %v", created)
		}

		// Merge: given fields and properties overwrite, others stay.
		r = h.rest(t, http.MethodPut, path, `{"phoneNumber":"+33 1 23","properties":{"plan":"pro"}}`)
		wantStatus(t, r, http.StatusOK)
		if raw := decodeMap(t, r); raw["phoneNumber"] != "+33 1 23" {
			t.Fatalf("wire phoneNumber = %v, want +33 1 23; body %s", raw["phoneNumber"], r.body)
		}
		merged := decode(t, r, &harkv1.User{})
		if merged.GetName() != "Ann" || merged.GetEmail() != "ann@example.com" || merged.GetPhoneNumber() != "+33 1 23" {
			t.Fatalf("merged fields = %v, want name and email kept, phone set", merged)
		}
		if field(merged.GetProperties(), "plan").GetStringValue() != "pro" || field(merged.GetProperties(), "seats").GetNumberValue() != 3 ||
			field(merged.GetProperties(), "nested", "a").GetNumberValue() != 1 {
			t.Fatalf("merged properties = %v, want plan pro, seats and nested kept", merged.GetProperties())
		}
		if !proto.Equal(merged.GetCreatedAt(), created.GetCreatedAt()) {
			t.Fatalf("createdAt changed on upsert: %v → %v", created.GetCreatedAt(), merged.GetCreatedAt())
		}

		r = h.rest(t, http.MethodGet, path, "")
		wantStatus(t, r, http.StatusOK)
		if got := decode(t, r, &harkv1.User{}); !proto.Equal(got, merged) {
			t.Fatalf("REST GET = %v, want %v", got, merged)
		}
		if got := h.getUser(t, "development", "rest-1"); !proto.Equal(got, merged) {
			t.Fatalf("Connect GET = %v, want %v", got, merged)
		}

		wantStatus(t, h.rest(t, http.MethodDelete, path, ""), http.StatusOK)
		h.wantNoUser(t, "development", "rest-1")
		wantStatus(t, h.rest(t, http.MethodDelete, path, ""), http.StatusNotFound)
		// Upserting again creates it afresh.
		r = h.rest(t, http.MethodPut, path, `{"locale":"fr-FR"}`)
		wantStatus(t, r, http.StatusOK)
		if again := decode(t, r, &harkv1.User{}); again.GetName() != "" || again.GetLocale() != "fr-FR" || len(again.GetProperties().GetFields()) != 0 {
			t.Fatalf("user re-created after delete = %v, want only the new locale", again)
		}
	})

	t.Run("upsert get delete over connect", func(t *testing.T) {
		t.Parallel()
		c := h.users()
		props, err := structpb.NewStruct(map[string]any{"plan": "free", "score": 1.5})
		if err != nil {
			t.Fatal(err)
		}
		created := mustCall(t, c.IdentifyUser, &harkv1.IdentifyUserRequest{
			Environment: "development", Id: "connect-1",
			Name: proto.String("Bo"), Timezone: proto.String("Europe/Paris"), Properties: props,
		}).GetUser()
		if created.GetName() != "Bo" || created.GetTimezone() != "Europe/Paris" || field(created.GetProperties(), "score").GetNumberValue() != 1.5 {
			t.Fatalf("created = %v", created)
		}
		more, _ := structpb.NewStruct(map[string]any{"score": 2, "extra": "x"})
		merged := mustCall(t, c.IdentifyUser, &harkv1.IdentifyUserRequest{
			Environment: "development", Id: "connect-1", Avatar: proto.String("https://example.com/bo.png"), Properties: more,
		}).GetUser()
		if merged.GetName() != "Bo" || merged.GetTimezone() != "Europe/Paris" || merged.GetAvatar() != "https://example.com/bo.png" ||
			field(merged.GetProperties(), "plan").GetStringValue() != "free" || field(merged.GetProperties(), "score").GetNumberValue() != 2 ||
			field(merged.GetProperties(), "extra").GetStringValue() != "x" {
			t.Fatalf("merged = %v, want name/timezone/plan kept, avatar/score/extra set", merged)
		}
		r := h.rest(t, http.MethodGet, "/v1/environments/development/users/connect-1", "")
		wantStatus(t, r, http.StatusOK)
		if got := decode(t, r, &harkv1.User{}); !proto.Equal(got, merged) {
			t.Fatalf("REST GET of a Connect upsert = %v, want %v", got, merged)
		}

		mustCall(t, c.DeleteUser, &harkv1.DeleteUserRequest{Environment: "development", Id: "connect-1"})
		h.wantNoUser(t, "development", "connect-1")
		_, err = call(t, c.DeleteUser, &harkv1.DeleteUserRequest{Environment: "development", Id: "connect-1"})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("over grpc", func(t *testing.T) {
		t.Parallel()
		c := harkv1.NewUserServiceClient(h.grpcConn(t))
		ctx := grpcCtx(t, h.admin())
		res, err := c.IdentifyUser(ctx, &harkv1.IdentifyUserRequest{Environment: "development", Id: "grpc-1", Email: proto.String("g@example.com")})
		if err != nil {
			t.Fatalf("gRPC IdentifyUser: %v", err)
		}
		got, err := c.GetUser(ctx, &harkv1.GetUserRequest{Environment: "development", Id: "grpc-1"})
		if err != nil {
			t.Fatalf("gRPC GetUser: %v", err)
		}
		if !proto.Equal(got.GetUser(), res.GetUser()) || got.GetUser().GetEmail() != "g@example.com" {
			t.Fatalf("gRPC GetUser = %v, want %v", got.GetUser(), res.GetUser())
		}
		if _, err := c.DeleteUser(ctx, &harkv1.DeleteUserRequest{Environment: "development", Id: "grpc-1"}); err != nil {
			t.Fatalf("gRPC DeleteUser: %v", err)
		}
		_, err = c.GetUser(ctx, &harkv1.GetUserRequest{Environment: "development", Id: "grpc-1"})
		if code := grpcstatus.Code(err); code != codes.NotFound {
			t.Fatalf("gRPC GetUser after delete: %v, want NotFound", err)
		}
	})

	t.Run("users are per environment", func(t *testing.T) {
		t.Parallel()
		wantStatus(t, h.rest(t, http.MethodPut, "/v1/environments/development/users/scoped-1", `{"name":"Dev only"}`), http.StatusOK)
		h.wantNoUser(t, "production", "scoped-1")
		list := mustCall(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "production", PageSize: 1000}).GetUsers()
		if slices.ContainsFunc(list, func(u *harkv1.User) bool { return u.GetId() == "scoped-1" }) {
			t.Fatalf("production lists the development user scoped-1")
		}
		// Deleting in production does not touch development.
		wantStatus(t, h.rest(t, http.MethodDelete, "/v1/environments/production/users/scoped-1", ""), http.StatusNotFound)
		if u := h.getUser(t, "development", "scoped-1"); u.GetName() != "Dev only" {
			t.Fatalf("development user = %v", u)
		}
	})

	t.Run("unknown environment", func(t *testing.T) {
		t.Parallel()
		base := "/v1/environments/nope/users"
		wantStatus(t, h.rest(t, http.MethodPut, base+"/u1", `{"name":"X"}`), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, base+"/u1", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodDelete, base+"/u1", ""), http.StatusNotFound)
		wantStatus(t, h.rest(t, http.MethodGet, base, ""), http.StatusNotFound)
		_, err := call(t, h.users().IdentifyUser, &harkv1.IdentifyUserRequest{Environment: "nope", Id: "u1", Name: proto.String("X")})
		wantCode(t, err, connect.CodeNotFound)
		_, err = call(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "nope"})
		wantCode(t, err, connect.CodeNotFound)
	})

	t.Run("invalid id", func(t *testing.T) {
		t.Parallel()
		r := h.rest(t, http.MethodPut, "/v1/environments/development/users/"+strings.Repeat("x", 256), `{"name":"X"}`)
		wantStatus(t, r, http.StatusBadRequest)
		wantViolation(t, restViolations(t, r), "id")
	})

	t.Run("list with paging", func(t *testing.T) {
		t.Parallel()
		// An environment of its own, so the other subtests' users do not
		// show up.
		wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments", `{"slug":"paging","name":"Paging"}`), http.StatusOK)
		for _, id := range []string{"u-c", "u-a", "u-e", "u-b", "u-d"} {
			mustCall(t, h.users().IdentifyUser, &harkv1.IdentifyUserRequest{Environment: "paging", Id: id, Name: proto.String("User " + id)})
		}
		pagers := []struct {
			name string
			page func(t *testing.T, token string) *harkv1.ListUsersResponse
		}{
			{"connect", func(t *testing.T, token string) *harkv1.ListUsersResponse {
				return mustCall(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "paging", PageSize: 2, PageToken: token})
			}},
			{"rest", func(t *testing.T, token string) *harkv1.ListUsersResponse {
				q := "?pageSize=2"
				if token != "" {
					q += "&pageToken=" + token
				}
				r := h.rest(t, http.MethodGet, "/v1/environments/paging/users"+q, "")
				wantStatus(t, r, http.StatusOK)
				return decode(t, r, &harkv1.ListUsersResponse{})
			}},
		}
		for _, p := range pagers {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				var pages [][]string
				token := ""
				for range 10 {
					res := p.page(t, token)
					var ids []string
					for _, u := range res.GetUsers() {
						ids = append(ids, u.GetId())
						if u.GetName() != "User "+u.GetId() || u.GetEnvironment() != "paging" {
							t.Fatalf("listed user = %v", u)
						}
					}
					pages = append(pages, ids)
					if token = res.GetNextPageToken(); token == "" {
						break
					}
				}
				want := [][]string{{"u-a", "u-b"}, {"u-c", "u-d"}, {"u-e"}}
				if !slices.EqualFunc(pages, want, slices.Equal) {
					t.Fatalf("pages = %q, want %q", pages, want)
				}
			})
		}
		t.Run("bad page token", func(t *testing.T) {
			t.Parallel()
			_, err := call(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "paging", PageToken: "!!"})
			wantCode(t, err, connect.CodeInvalidArgument)
			wantViolation(t, connectViolations(t, err), "pageToken")
		})
		t.Run("default page", func(t *testing.T) {
			t.Parallel()
			res := mustCall(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "paging"})
			if len(res.GetUsers()) != 5 || res.GetNextPageToken() != "" {
				t.Fatalf("default page = %d users, next %q; want all 5 and no next token", len(res.GetUsers()), res.GetNextPageToken())
			}
		})
	})

	t.Run("many users list fully", func(t *testing.T) {
		t.Parallel()
		wantStatus(t, h.rest(t, http.MethodPost, "/v1/environments", `{"slug":"many","name":"Many"}`), http.StatusOK)
		const n = 120 // more than the default page of 50
		for i := range n {
			mustCall(t, h.users().IdentifyUser, &harkv1.IdentifyUserRequest{Environment: "many", Id: fmt.Sprintf("m-%03d", i)})
		}
		var ids []string
		token := ""
		for range 10 {
			res := mustCall(t, h.users().ListUsers, &harkv1.ListUsersRequest{Environment: "many", PageToken: token})
			for _, u := range res.GetUsers() {
				ids = append(ids, u.GetId())
			}
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(ids) != n || !slices.IsSorted(ids) || ids[0] != "m-000" || ids[n-1] != "m-"+strconv.Itoa(n-1) {
			t.Fatalf("listed %d users (sorted %v, first %q), want %d in id order", len(ids), slices.IsSorted(ids), ids[0], n)
		}
	})
}
