package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/harkhq/hark/plugins/host"
)

// pluginHealthPrefix names each source plugin's own health service:
// hark.source.<type>.
const pluginHealthPrefix = "hark.source."

// diskHealthService reports the data disk: NOT_SERVING while its free
// space is below --min-free-disk (writes get 503) or the store is read-only.
const diskHealthService = "hark.disk"

// natsHealthService reports, in cluster mode, the connection to NATS:
// NOT_SERVING while it is down (webhooks then get 503).
const natsHealthService = "hark.nats"

// healthWatchPoll is how often a health Watch stream re-checks: conditions
// change without telling anyone, and the stream sends only changes.
const healthWatchPoll = 250 * time.Millisecond

// healthCondition is one thing a node needs to take traffic. It is answered
// for under its own service name, and the overall service "" is SERVING only
// while every condition holds.
type healthCondition struct {
	// service is the health service name reporting this condition alone,
	// e.g. "hark.source.segment".
	service string
	// ok reports whether the condition holds now. It is called on every
	// check, so it must be cheap and must not block.
	ok func() bool
}

// healthChecker answers grpc.health.v1 Check and Watch, as load balancers
// and orchestrators read them:
//
//   - "" (the node) is SERVING only while every condition holds. A node
//     whose Segment plugin is down answers Segment deliveries with 503, so
//     it should leave the pool until the plugin is back.
//   - Each condition's service (hark.source.<type> for each plugin) reports
//     that condition alone, so an operator sees which one failed.
//   - The hark.v1 service names are SERVING while the process answers, as
//     they were with the static checker: the API itself does not depend on
//     the plugins.
//   - Any other name is NotFound.
//
// To add a condition (say, "disk space is low"), append a healthCondition
// where the checker is built (Server.handler): it gets its own service name
// and takes "" down while it fails; nothing else changes. It is safe for
// concurrent use.
type healthChecker struct {
	services   map[string]bool
	conditions []healthCondition
}

var _ grpchealth.Watcher = (*healthChecker)(nil)

// newHealthChecker answers for the always-serving services and the
// conditions.
func newHealthChecker(services []string, conditions ...healthCondition) *healthChecker {
	c := &healthChecker{services: map[string]bool{}, conditions: conditions}
	for _, s := range services {
		c.services[s] = true
	}
	return c
}

// pluginConditions is one condition per installed source plugin: its
// process is up and answers its liveness ping (host.Info.Healthy).
func pluginConditions(h *host.Host) []healthCondition {
	var out []healthCondition
	for _, info := range h.Types() {
		typ := info.Type
		out = append(out, healthCondition{service: pluginHealthPrefix + typ, ok: func() bool {
			in, ok := h.Type(typ)
			return ok && in.Healthy
		}})
	}
	return out
}

// Check implements grpchealth.Checker.
func (c *healthChecker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	status, ok := c.status(req.Service)
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown health service %q", req.Service))
	}
	return &grpchealth.CheckResponse{Status: status}, nil
}

// Watch implements grpchealth.Watcher by polling every healthWatchPoll; the
// handler sends a status only when it changed. The polling goroutine belongs
// to the watch: the returned stop ends it.
func (c *healthChecker) Watch(_ context.Context, req *grpchealth.CheckRequest, onChange func()) (func(), error) {
	if _, ok := c.status(req.Service); !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown health service %q", req.Service))
	}
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(healthWatchPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				onChange()
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }, nil
}

// status is service's status, and whether the service is known.
func (c *healthChecker) status(service string) (grpchealth.Status, bool) {
	if service == "" {
		for _, cond := range c.conditions {
			if !cond.ok() {
				return grpchealth.StatusNotServing, true
			}
		}
		return grpchealth.StatusServing, true
	}
	if c.services[service] {
		return grpchealth.StatusServing, true
	}
	for _, cond := range c.conditions {
		if cond.service == service {
			if cond.ok() {
				return grpchealth.StatusServing, true
			}
			return grpchealth.StatusNotServing, true
		}
	}
	return grpchealth.StatusUnknown, false
}
