package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type eventService struct{ e *engine.Engine }

func newEventService(e *engine.Engine) harkv1connect.EventServiceHandler {
	return &eventService{e: e}
}

func (s *eventService) ListEventTypes(ctx context.Context, req *connect.Request[harkv1.ListEventTypesRequest]) (*connect.Response[harkv1.ListEventTypesResponse], error) {
	return respond(s.e.ListEventTypes(ctx, req.Msg))
}

func (s *eventService) ListSourceEvents(ctx context.Context, req *connect.Request[harkv1.ListSourceEventsRequest]) (*connect.Response[harkv1.ListSourceEventsResponse], error) {
	return respond(s.e.ListSourceEvents(ctx, req.Msg))
}

func (s *eventService) GetSourceEvent(ctx context.Context, req *connect.Request[harkv1.GetSourceEventRequest]) (*connect.Response[harkv1.GetSourceEventResponse], error) {
	ev, err := s.e.GetSourceEvent(ctx, req.Msg.GetEnvironment(), req.Msg.GetId())
	return respond(&harkv1.GetSourceEventResponse{SourceEvent: ev}, err)
}

func (s *eventService) WatchSourceEvents(ctx context.Context, req *connect.Request[harkv1.WatchSourceEventsRequest], stream *connect.ServerStream[harkv1.WatchSourceEventsResponse]) error {
	// Send(nil) sends the response headers without a message: the client's
	// call returns as soon as the tail is live.
	ready := func() error { return stream.Send(nil) }
	return s.e.WatchSourceEvents(ctx, req.Msg, ready, stream.Send)
}
