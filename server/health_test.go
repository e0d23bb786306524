package server

import (
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// TestHealthChecker runs the checker with two conditions, as a plugin and a
// later one (disk space, say) would be: each answers for itself, "" needs
// both, the always-serving names stay serving, and a Watch hears changes.
func TestHealthChecker(t *testing.T) {
	t.Parallel()
	var pluginUp, diskOK atomic.Bool
	pluginUp.Store(true)
	diskOK.Store(true)
	c := newHealthChecker([]string{"hark.v1.SourceService"},
		healthCondition{service: "hark.source.segment", ok: pluginUp.Load},
		healthCondition{service: "hark.disk", ok: diskOK.Load},
	)
	check := func(service string) grpchealth.Status {
		t.Helper()
		res, err := c.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return res.Status
	}
	want := func(what string, statuses map[string]grpchealth.Status) {
		t.Helper()
		for service, status := range statuses {
			if got := check(service); got != status {
				t.Errorf("%s: Check(%q) = %v, want %v", what, service, got, status)
			}
		}
	}
	up, down := grpchealth.StatusServing, grpchealth.StatusNotServing
	want("all well", map[string]grpchealth.Status{"": up, "hark.source.segment": up, "hark.disk": up, "hark.v1.SourceService": up})
	diskOK.Store(false)
	want("disk low", map[string]grpchealth.Status{"": down, "hark.source.segment": up, "hark.disk": down, "hark.v1.SourceService": up})
	pluginUp.Store(false)
	diskOK.Store(true)
	want("plugin down", map[string]grpchealth.Status{"": down, "hark.source.segment": down, "hark.disk": up, "hark.v1.SourceService": up})

	if _, err := c.Check(t.Context(), &grpchealth.CheckRequest{Service: "hark.source.nonesuch"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Check of an unknown service: %v, want NotFound", err)
	}
	if _, err := c.Watch(t.Context(), &grpchealth.CheckRequest{Service: "nonesuch"}, func() {}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Watch of an unknown service: %v, want NotFound", err)
	}

	changed := make(chan struct{}, 1)
	stop, err := c.Watch(t.Context(), &grpchealth.CheckRequest{}, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	pluginUp.Store(true)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the Watch was not told to re-check within 10s")
	}
	if got := check(""); got != up {
		t.Errorf("after the plugin came back: Check(\"\") = %v, want serving", got)
	}
	stop()
	stop() // stopping twice is harmless
}
