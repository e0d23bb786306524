package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type destinationService struct{ e *engine.Engine }

func newDestinationService(e *engine.Engine) harkv1connect.DestinationServiceHandler {
	return &destinationService{e: e}
}

func (s *destinationService) CreateDestination(ctx context.Context, req *connect.Request[harkv1.CreateDestinationRequest]) (*connect.Response[harkv1.CreateDestinationResponse], error) {
	d, err := s.e.CreateDestination(ctx, req.Msg)
	return respond(&harkv1.CreateDestinationResponse{Destination: d}, err)
}

func (s *destinationService) GetDestination(ctx context.Context, req *connect.Request[harkv1.GetDestinationRequest]) (*connect.Response[harkv1.GetDestinationResponse], error) {
	d, err := s.e.GetDestination(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetDestinationResponse{Destination: d}, err)
}

func (s *destinationService) ListDestinations(ctx context.Context, req *connect.Request[harkv1.ListDestinationsRequest]) (*connect.Response[harkv1.ListDestinationsResponse], error) {
	return respond(s.e.ListDestinations(ctx, req.Msg))
}

func (s *destinationService) UpdateDestination(ctx context.Context, req *connect.Request[harkv1.UpdateDestinationRequest]) (*connect.Response[harkv1.UpdateDestinationResponse], error) {
	d, err := s.e.UpdateDestination(ctx, req.Msg)
	return respond(&harkv1.UpdateDestinationResponse{Destination: d}, err)
}

func (s *destinationService) DeleteDestination(ctx context.Context, req *connect.Request[harkv1.DeleteDestinationRequest]) (*connect.Response[harkv1.DeleteDestinationResponse], error) {
	return respond(&harkv1.DeleteDestinationResponse{}, s.e.DeleteDestination(ctx, req.Msg.GetEnvironment(), req.Msg.GetId()))
}

func (s *destinationService) RotateDestinationSecret(ctx context.Context, req *connect.Request[harkv1.RotateDestinationSecretRequest]) (*connect.Response[harkv1.RotateDestinationSecretResponse], error) {
	d, err := s.e.RotateDestinationSecret(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.RotateDestinationSecretResponse{Destination: d}, err)
}

func (s *destinationService) TestDestination(ctx context.Context, req *connect.Request[harkv1.TestDestinationRequest]) (*connect.Response[harkv1.TestDestinationResponse], error) {
	a, err := s.e.TestDestination(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.TestDestinationResponse{Attempt: a}, err)
}

type deliveryService struct{ e *engine.Engine }

func newDeliveryService(e *engine.Engine) harkv1connect.DeliveryServiceHandler {
	return &deliveryService{e: e}
}

func (s *deliveryService) ListDeliveries(ctx context.Context, req *connect.Request[harkv1.ListDeliveriesRequest]) (*connect.Response[harkv1.ListDeliveriesResponse], error) {
	return respond(s.e.ListDeliveries(ctx, req.Msg))
}

func (s *deliveryService) GetDelivery(ctx context.Context, req *connect.Request[harkv1.GetDeliveryRequest]) (*connect.Response[harkv1.GetDeliveryResponse], error) {
	d, err := s.e.GetDelivery(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetDeliveryResponse{Delivery: d}, err)
}

func (s *deliveryService) RetryDelivery(ctx context.Context, req *connect.Request[harkv1.RetryDeliveryRequest]) (*connect.Response[harkv1.RetryDeliveryResponse], error) {
	d, err := s.e.RetryDelivery(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.RetryDeliveryResponse{Delivery: d}, err)
}

func (s *deliveryService) ReplayDeliveries(ctx context.Context, req *connect.Request[harkv1.ReplayDeliveriesRequest]) (*connect.Response[harkv1.ReplayDeliveriesResponse], error) {
	n, err := s.e.ReplayDeliveries(ctx, req.Msg)
	return respond(&harkv1.ReplayDeliveriesResponse{QueuedCount: int32(n)}, err)
}
