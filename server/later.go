package server

import (
	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// The services below are part of the v1 API but their behaviour arrives in
// later stages (triggers, runs). Until then every RPC
// answers Unimplemented through the generated Unimplemented handlers, so
// clients see the whole API surface and a clear code, never a fake result.

type triggerService struct {
	harkv1connect.UnimplementedTriggerServiceHandler
	e *engine.Engine
}

func newTriggerService(e *engine.Engine) harkv1connect.TriggerServiceHandler {
	return &triggerService{e: e}
}

type workflowRunService struct {
	harkv1connect.UnimplementedWorkflowRunServiceHandler
	e *engine.Engine
}

func newWorkflowRunService(e *engine.Engine) harkv1connect.WorkflowRunServiceHandler {
	return &workflowRunService{e: e}
}
