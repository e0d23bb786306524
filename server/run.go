package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type workflowRunService struct{ e *engine.Engine }

func newWorkflowRunService(e *engine.Engine) harkv1connect.WorkflowRunServiceHandler {
	return &workflowRunService{e: e}
}

func (s *workflowRunService) ListWorkflowRuns(ctx context.Context, req *connect.Request[harkv1.ListWorkflowRunsRequest]) (*connect.Response[harkv1.ListWorkflowRunsResponse], error) {
	return respond(s.e.ListWorkflowRuns(ctx, req.Msg))
}

func (s *workflowRunService) GetWorkflowRun(ctx context.Context, req *connect.Request[harkv1.GetWorkflowRunRequest]) (*connect.Response[harkv1.GetWorkflowRunResponse], error) {
	run, err := s.e.GetWorkflowRun(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetWorkflowRunResponse{WorkflowRun: run}, err)
}

func (s *workflowRunService) WatchWorkflowRuns(ctx context.Context, req *connect.Request[harkv1.WatchWorkflowRunsRequest], stream *connect.ServerStream[harkv1.WatchWorkflowRunsResponse]) error {
	ready := func() error { return stream.Send(nil) } // headers now, see eventService
	return s.e.WatchWorkflowRuns(ctx, req.Msg, ready, func(run *harkv1.WorkflowRun) error {
		return stream.Send(&harkv1.WatchWorkflowRunsResponse{WorkflowRun: run})
	})
}
