package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type sourceService struct{ e *engine.Engine }

func newSourceService(e *engine.Engine) harkv1connect.SourceServiceHandler {
	return &sourceService{e: e}
}

func (s *sourceService) ListSourceTypes(ctx context.Context, _ *connect.Request[harkv1.ListSourceTypesRequest]) (*connect.Response[harkv1.ListSourceTypesResponse], error) {
	return connect.NewResponse(s.e.ListSourceTypes(ctx)), nil
}

func (s *sourceService) CreateSource(ctx context.Context, req *connect.Request[harkv1.CreateSourceRequest]) (*connect.Response[harkv1.CreateSourceResponse], error) {
	src, err := s.e.CreateSource(ctx, req.Msg)
	return respond(&harkv1.CreateSourceResponse{Source: src}, err)
}

func (s *sourceService) GetSource(ctx context.Context, req *connect.Request[harkv1.GetSourceRequest]) (*connect.Response[harkv1.GetSourceResponse], error) {
	src, err := s.e.GetSource(ctx, req.Msg.GetId())
	return respond(&harkv1.GetSourceResponse{Source: src}, err)
}

func (s *sourceService) ListSources(ctx context.Context, req *connect.Request[harkv1.ListSourcesRequest]) (*connect.Response[harkv1.ListSourcesResponse], error) {
	return respond(s.e.ListSources(ctx, req.Msg))
}

func (s *sourceService) DeleteSource(ctx context.Context, req *connect.Request[harkv1.DeleteSourceRequest]) (*connect.Response[harkv1.DeleteSourceResponse], error) {
	return respond(&harkv1.DeleteSourceResponse{}, s.e.DeleteSource(ctx, req.Msg.GetId()))
}

func (s *sourceService) GetSourceEnvironment(ctx context.Context, req *connect.Request[harkv1.GetSourceEnvironmentRequest]) (*connect.Response[harkv1.GetSourceEnvironmentResponse], error) {
	se, err := s.e.GetSourceEnvironment(ctx, req.Msg.GetSourceId(), req.Msg.GetEnvironment())
	return respond(&harkv1.GetSourceEnvironmentResponse{SourceEnvironment: se}, err)
}

func (s *sourceService) UpdateSourceEnvironment(ctx context.Context, req *connect.Request[harkv1.UpdateSourceEnvironmentRequest]) (*connect.Response[harkv1.UpdateSourceEnvironmentResponse], error) {
	se, err := s.e.UpdateSourceEnvironment(ctx, req.Msg)
	return respond(&harkv1.UpdateSourceEnvironmentResponse{SourceEnvironment: se}, err)
}

func (s *sourceService) RotateSourceToken(ctx context.Context, req *connect.Request[harkv1.RotateSourceTokenRequest]) (*connect.Response[harkv1.RotateSourceTokenResponse], error) {
	se, err := s.e.RotateSourceToken(ctx, req.Msg.GetSourceId(), req.Msg.GetEnvironment())
	return respond(&harkv1.RotateSourceTokenResponse{SourceEnvironment: se}, err)
}

func (s *sourceService) ListRefusals(ctx context.Context, req *connect.Request[harkv1.ListRefusalsRequest]) (*connect.Response[harkv1.ListRefusalsResponse], error) {
	refusals, err := s.e.ListRefusals(ctx, req.Msg)
	return respond(&harkv1.ListRefusalsResponse{Refusals: refusals}, err)
}
