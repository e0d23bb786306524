package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// configService serves configuration as code (engine/config.go): export,
// plan and apply of an environment's document.
type configService struct{ e *engine.Engine }

func newConfigService(e *engine.Engine) harkv1connect.ConfigServiceHandler {
	return &configService{e: e}
}

func (s *configService) ExportConfig(ctx context.Context, req *connect.Request[harkv1.ExportConfigRequest]) (*connect.Response[harkv1.ExportConfigResponse], error) {
	doc, err := s.e.ExportConfig(ctx, req.Msg)
	return respond(&harkv1.ExportConfigResponse{Document: doc}, err)
}

func (s *configService) PlanConfig(ctx context.Context, req *connect.Request[harkv1.PlanConfigRequest]) (*connect.Response[harkv1.PlanConfigResponse], error) {
	changes, err := s.e.PlanConfig(ctx, req.Msg)
	return respond(&harkv1.PlanConfigResponse{Changes: changes}, err)
}

func (s *configService) ApplyConfig(ctx context.Context, req *connect.Request[harkv1.ApplyConfigRequest]) (*connect.Response[harkv1.ApplyConfigResponse], error) {
	changes, err := s.e.ApplyConfig(ctx, req.Msg)
	return respond(&harkv1.ApplyConfigResponse{Changes: changes}, err)
}
