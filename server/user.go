package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type userService struct{ e *engine.Engine }

func newUserService(e *engine.Engine) harkv1connect.UserServiceHandler {
	return &userService{e: e}
}

func (s *userService) IdentifyUser(ctx context.Context, req *connect.Request[harkv1.IdentifyUserRequest]) (*connect.Response[harkv1.IdentifyUserResponse], error) {
	u, err := s.e.IdentifyUser(ctx, req.Msg)
	return respond(&harkv1.IdentifyUserResponse{User: u}, err)
}

func (s *userService) GetUser(ctx context.Context, req *connect.Request[harkv1.GetUserRequest]) (*connect.Response[harkv1.GetUserResponse], error) {
	u, err := s.e.GetUser(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetUserResponse{User: u}, err)
}

func (s *userService) ListUsers(ctx context.Context, req *connect.Request[harkv1.ListUsersRequest]) (*connect.Response[harkv1.ListUsersResponse], error) {
	return respond(s.e.ListUsers(ctx, req.Msg))
}

func (s *userService) DeleteUser(ctx context.Context, req *connect.Request[harkv1.DeleteUserRequest]) (*connect.Response[harkv1.DeleteUserResponse], error) {
	return respond(&harkv1.DeleteUserResponse{}, s.e.DeleteUser(ctx, req.Msg.GetEnvironment(), req.Msg.GetId()))
}
