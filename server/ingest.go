package server

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type ingestService struct {
	e       *engine.Engine
	maxBody int64
}

func newIngestService(e *engine.Engine, maxBody int64) harkv1connect.IngestServiceHandler {
	return &ingestService{e: e, maxBody: maxBody}
}

// Receive hands the raw delivery — body, content type and headers (for
// signatures) — to the engine, which answers once its events are stored.
func (s *ingestService) Receive(ctx context.Context, req *connect.Request[harkv1.ReceiveRequest]) (*connect.Response[harkv1.ReceiveResponse], error) {
	body := req.Msg.GetBody()
	if int64(len(body.GetData())) > s.maxBody {
		// ingestEdge bounds the request; this bounds the delivery itself,
		// whatever the protocol did to carry it.
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body is larger than %d bytes", s.maxBody))
	}
	return respond(s.e.Receive(ctx, req.Msg.GetToken(), engine.Delivery{
		Header:      req.Header(),
		Body:        body.GetData(),
		ContentType: body.GetContentType(),
	}))
}
