package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type ingestService struct{ e *engine.Engine }

func newIngestService(e *engine.Engine) harkv1connect.IngestServiceHandler {
	return &ingestService{e: e}
}

// Receive resolves the webhook token (unknown → 404). Translating and storing
// the delivery needs the source plugins, which come next; until then a known
// token answers Unimplemented (501). Segment retries 5xx for four hours, so a
// source should not be pointed at hark before ingestion exists.
func (s *ingestService) Receive(ctx context.Context, req *connect.Request[harkv1.ReceiveRequest]) (*connect.Response[harkv1.ReceiveResponse], error) {
	if _, _, err := s.e.ResolveIngestToken(ctx, req.Msg.GetToken()); err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("event ingestion is not implemented yet"))
}
