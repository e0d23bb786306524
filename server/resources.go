package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

// The handlers of tenants, objects (with subscriptions) and audiences:
// thin, as every handler; the rules are in engine/resources.go.

type tenantService struct{ e *engine.Engine }

func newTenantService(e *engine.Engine) harkv1connect.TenantServiceHandler {
	return &tenantService{e: e}
}

func (s *tenantService) SetTenant(ctx context.Context, req *connect.Request[harkv1.SetTenantRequest]) (*connect.Response[harkv1.SetTenantResponse], error) {
	t, err := s.e.SetTenant(ctx, req.Msg)
	return respond(&harkv1.SetTenantResponse{Tenant: t}, err)
}

func (s *tenantService) GetTenant(ctx context.Context, req *connect.Request[harkv1.GetTenantRequest]) (*connect.Response[harkv1.GetTenantResponse], error) {
	t, err := s.e.GetTenant(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetTenantResponse{Tenant: t}, err)
}

func (s *tenantService) ListTenants(ctx context.Context, req *connect.Request[harkv1.ListTenantsRequest]) (*connect.Response[harkv1.ListTenantsResponse], error) {
	return respond(s.e.ListTenants(ctx, req.Msg))
}

func (s *tenantService) DeleteTenant(ctx context.Context, req *connect.Request[harkv1.DeleteTenantRequest]) (*connect.Response[harkv1.DeleteTenantResponse], error) {
	return respond(&harkv1.DeleteTenantResponse{}, s.e.DeleteTenant(ctx, req.Msg.GetEnvironment(), req.Msg.GetId()))
}

type objectService struct{ e *engine.Engine }

func newObjectService(e *engine.Engine) harkv1connect.ObjectServiceHandler {
	return &objectService{e: e}
}

func (s *objectService) SetObject(ctx context.Context, req *connect.Request[harkv1.SetObjectRequest]) (*connect.Response[harkv1.SetObjectResponse], error) {
	o, err := s.e.SetObject(ctx, req.Msg)
	return respond(&harkv1.SetObjectResponse{Object: o}, err)
}

func (s *objectService) GetObject(ctx context.Context, req *connect.Request[harkv1.GetObjectRequest]) (*connect.Response[harkv1.GetObjectResponse], error) {
	o, err := s.e.GetObject(ctx, req.Msg.GetEnvironment(), req.Msg.GetCollection(), req.Msg.GetId())
	return respond(&harkv1.GetObjectResponse{Object: o}, err)
}

func (s *objectService) ListObjects(ctx context.Context, req *connect.Request[harkv1.ListObjectsRequest]) (*connect.Response[harkv1.ListObjectsResponse], error) {
	return respond(s.e.ListObjects(ctx, req.Msg))
}

func (s *objectService) DeleteObject(ctx context.Context, req *connect.Request[harkv1.DeleteObjectRequest]) (*connect.Response[harkv1.DeleteObjectResponse], error) {
	m := req.Msg
	return respond(&harkv1.DeleteObjectResponse{}, s.e.DeleteObject(ctx, m.GetEnvironment(), m.GetCollection(), m.GetId()))
}

func (s *objectService) AddSubscriptions(ctx context.Context, req *connect.Request[harkv1.AddSubscriptionsRequest]) (*connect.Response[harkv1.AddSubscriptionsResponse], error) {
	subs, err := s.e.AddSubscriptions(ctx, req.Msg)
	return respond(&harkv1.AddSubscriptionsResponse{Subscriptions: subs}, err)
}

func (s *objectService) ListSubscriptions(ctx context.Context, req *connect.Request[harkv1.ListSubscriptionsRequest]) (*connect.Response[harkv1.ListSubscriptionsResponse], error) {
	return respond(s.e.ListSubscriptions(ctx, req.Msg))
}

func (s *objectService) DeleteSubscriptions(ctx context.Context, req *connect.Request[harkv1.DeleteSubscriptionsRequest]) (*connect.Response[harkv1.DeleteSubscriptionsResponse], error) {
	return respond(&harkv1.DeleteSubscriptionsResponse{}, s.e.DeleteSubscriptions(ctx, req.Msg))
}

func (s *objectService) ListUserSubscriptions(ctx context.Context, req *connect.Request[harkv1.ListUserSubscriptionsRequest]) (*connect.Response[harkv1.ListUserSubscriptionsResponse], error) {
	return respond(s.e.ListUserSubscriptions(ctx, req.Msg))
}

type audienceService struct{ e *engine.Engine }

func newAudienceService(e *engine.Engine) harkv1connect.AudienceServiceHandler {
	return &audienceService{e: e}
}

func (s *audienceService) AddAudienceMembers(ctx context.Context, req *connect.Request[harkv1.AddAudienceMembersRequest]) (*connect.Response[harkv1.AddAudienceMembersResponse], error) {
	ms, err := s.e.AddAudienceMembers(ctx, req.Msg)
	return respond(&harkv1.AddAudienceMembersResponse{Members: ms}, err)
}

func (s *audienceService) ListAudienceMembers(ctx context.Context, req *connect.Request[harkv1.ListAudienceMembersRequest]) (*connect.Response[harkv1.ListAudienceMembersResponse], error) {
	return respond(s.e.ListAudienceMembers(ctx, req.Msg))
}

func (s *audienceService) ListAudiences(ctx context.Context, req *connect.Request[harkv1.ListAudiencesRequest]) (*connect.Response[harkv1.ListAudiencesResponse], error) {
	return respond(s.e.ListAudiences(ctx, req.Msg))
}

func (s *audienceService) RemoveAudienceMembers(ctx context.Context, req *connect.Request[harkv1.RemoveAudienceMembersRequest]) (*connect.Response[harkv1.RemoveAudienceMembersResponse], error) {
	return respond(&harkv1.RemoveAudienceMembersResponse{}, s.e.RemoveAudienceMembers(ctx, req.Msg))
}
