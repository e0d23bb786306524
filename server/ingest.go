package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type ingestService struct{ e *engine.Engine }

func newIngestService(e *engine.Engine) harkv1connect.IngestServiceHandler {
	return &ingestService{e: e}
}

// Receive hands the raw delivery — body, content type and headers (for
// signatures) — to the engine, which answers once its events are stored.
func (s *ingestService) Receive(ctx context.Context, req *connect.Request[harkv1.ReceiveRequest]) (*connect.Response[harkv1.ReceiveResponse], error) {
	body := req.Msg.GetBody()
	return respond(s.e.Receive(ctx, req.Msg.GetToken(), engine.Delivery{
		Header:      req.Header(),
		Body:        body.GetData(),
		ContentType: body.GetContentType(),
	}))
}
