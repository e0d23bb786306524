package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/gen/hark/v1/harkv1connect"
)

type ingestService struct {
	e       *engine.Engine
	log     *slog.Logger
	maxBody int64
}

func newIngestService(e *engine.Engine, log *slog.Logger, maxBody int64) harkv1connect.IngestServiceHandler {
	return &ingestService{e: e, log: log, maxBody: maxBody}
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
	resp, err := s.e.Receive(ctx, req.Msg.GetToken(), engine.Delivery{
		Header:      req.Header(),
		Body:        body.GetData(),
		ContentType: body.GetContentType(),
	})
	if err != nil {
		return nil, refused(ctx, s.e, s.log, harkv1connect.IngestServiceReceiveProcedure, req.Msg.GetToken(), len(body.GetData()), err)
	}
	return connect.NewResponse(resp), nil
}

// refused maps the error a delivery was refused with, as the caller will
// see it, and records the refusal in its source environment's log
// (DESIGN §10). An unknown token has no log to go to; a sender that gave
// up (canceled) was not refused.
func refused(ctx context.Context, e *engine.Engine, log *slog.Logger, procedure, token string, size int, err error) error {
	mapped := toConnectError(ctx, log, procedure, err)
	var cerr *connect.Error
	if errors.As(mapped, &cerr) && cerr.Code() != connect.CodeNotFound && cerr.Code() != connect.CodeCanceled {
		e.RecordRefusal(ctx, token, httpStatus(cerr.Code()), cerr.Message(), int64(size))
	}
	return mapped
}
