package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type triggerService struct{ e *engine.Engine }

func newTriggerService(e *engine.Engine) harkv1connect.TriggerServiceHandler {
	return &triggerService{e: e}
}

func (s *triggerService) CreateTrigger(ctx context.Context, req *connect.Request[harkv1.CreateTriggerRequest]) (*connect.Response[harkv1.CreateTriggerResponse], error) {
	t, err := s.e.CreateTrigger(ctx, req.Msg)
	return respond(&harkv1.CreateTriggerResponse{Trigger: t}, err)
}

func (s *triggerService) GetTrigger(ctx context.Context, req *connect.Request[harkv1.GetTriggerRequest]) (*connect.Response[harkv1.GetTriggerResponse], error) {
	t, err := s.e.GetTrigger(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetTriggerResponse{Trigger: t}, err)
}

func (s *triggerService) ListTriggers(ctx context.Context, req *connect.Request[harkv1.ListTriggersRequest]) (*connect.Response[harkv1.ListTriggersResponse], error) {
	return respond(s.e.ListTriggers(ctx, req.Msg))
}

func (s *triggerService) UpdateTrigger(ctx context.Context, req *connect.Request[harkv1.UpdateTriggerRequest]) (*connect.Response[harkv1.UpdateTriggerResponse], error) {
	t, err := s.e.UpdateTrigger(ctx, req.Msg)
	return respond(&harkv1.UpdateTriggerResponse{Trigger: t}, err)
}

func (s *triggerService) DeleteTrigger(ctx context.Context, req *connect.Request[harkv1.DeleteTriggerRequest]) (*connect.Response[harkv1.DeleteTriggerResponse], error) {
	return respond(&harkv1.DeleteTriggerResponse{}, s.e.DeleteTrigger(ctx, req.Msg.GetEnvironment(), req.Msg.GetId()))
}

func (s *triggerService) TestTrigger(ctx context.Context, req *connect.Request[harkv1.TestTriggerRequest]) (*connect.Response[harkv1.TestTriggerResponse], error) {
	return respond(s.e.TestTrigger(ctx, req.Msg))
}
