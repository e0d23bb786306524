package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type workflowService struct{ e *engine.Engine }

func newWorkflowService(e *engine.Engine) harkv1connect.WorkflowServiceHandler {
	return &workflowService{e: e}
}

func (s *workflowService) CreateWorkflow(ctx context.Context, req *connect.Request[harkv1.CreateWorkflowRequest]) (*connect.Response[harkv1.CreateWorkflowResponse], error) {
	wf, err := s.e.CreateWorkflow(ctx, req.Msg)
	return respond(&harkv1.CreateWorkflowResponse{Workflow: wf}, err)
}

func (s *workflowService) GetWorkflow(ctx context.Context, req *connect.Request[harkv1.GetWorkflowRequest]) (*connect.Response[harkv1.GetWorkflowResponse], error) {
	wf, err := s.e.GetWorkflow(ctx, req.Msg.GetKey())
	return respond(&harkv1.GetWorkflowResponse{Workflow: wf}, err)
}

func (s *workflowService) ListWorkflows(ctx context.Context, req *connect.Request[harkv1.ListWorkflowsRequest]) (*connect.Response[harkv1.ListWorkflowsResponse], error) {
	return respond(s.e.ListWorkflows(ctx, req.Msg))
}

func (s *workflowService) UpdateWorkflow(ctx context.Context, req *connect.Request[harkv1.UpdateWorkflowRequest]) (*connect.Response[harkv1.UpdateWorkflowResponse], error) {
	wf, err := s.e.UpdateWorkflow(ctx, req.Msg)
	return respond(&harkv1.UpdateWorkflowResponse{Workflow: wf}, err)
}

func (s *workflowService) DeleteWorkflow(ctx context.Context, req *connect.Request[harkv1.DeleteWorkflowRequest]) (*connect.Response[harkv1.DeleteWorkflowResponse], error) {
	return respond(&harkv1.DeleteWorkflowResponse{}, s.e.DeleteWorkflow(ctx, req.Msg.GetKey()))
}

// TriggerWorkflow reads the Idempotency-Key header and answers a replay with
// Idempotent-Replayed: true, as Knock's API does.
func (s *workflowService) TriggerWorkflow(ctx context.Context, req *connect.Request[harkv1.TriggerWorkflowRequest]) (*connect.Response[harkv1.TriggerWorkflowResponse], error) {
	resp, replayed, err := s.e.TriggerWorkflow(ctx, req.Msg, req.Header().Get("Idempotency-Key"))
	if err != nil {
		return nil, err
	}
	out := connect.NewResponse(resp)
	if replayed {
		out.Header().Set("Idempotent-Replayed", "true")
	}
	return out, nil
}

func (s *workflowService) CancelWorkflow(ctx context.Context, req *connect.Request[harkv1.CancelWorkflowRequest]) (*connect.Response[harkv1.CancelWorkflowResponse], error) {
	return respond(s.e.CancelWorkflow(ctx, req.Msg))
}
