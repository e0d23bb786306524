package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type environmentService struct{ e *engine.Engine }

func newEnvironmentService(e *engine.Engine) harkv1connect.EnvironmentServiceHandler {
	return &environmentService{e: e}
}

func (s *environmentService) ListEnvironments(ctx context.Context, req *connect.Request[harkv1.ListEnvironmentsRequest]) (*connect.Response[harkv1.ListEnvironmentsResponse], error) {
	return respond(s.e.ListEnvironments(ctx, req.Msg))
}

func (s *environmentService) CreateEnvironment(ctx context.Context, req *connect.Request[harkv1.CreateEnvironmentRequest]) (*connect.Response[harkv1.CreateEnvironmentResponse], error) {
	env, err := s.e.CreateEnvironment(ctx, req.Msg)
	return respond(&harkv1.CreateEnvironmentResponse{Environment: env}, err)
}

// respond wraps an engine result in a Connect response; errors go to the
// error interceptor unchanged.
func respond[T any](msg *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(msg), nil
}
