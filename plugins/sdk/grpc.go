package sdk

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// ProtocolMinor is the minor version of protocol 1 this package speaks. Minor
// versions only add; a host reads the plugin's minor from Describe.
const ProtocolMinor = 0

// grpcPlugin is the go-plugin glue for protocol version 1: it serves a Source
// over gRPC in the plugin process and hands the host a Source that calls it.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Source // set in the plugin process only
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterSourcePluginServiceServer(s, &grpcServer{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &grpcClient{c: pluginv1.NewSourcePluginServiceClient(c)}, nil
}

// grpcServer runs in the plugin process and calls the author's Source.
type grpcServer struct {
	pluginv1.UnimplementedSourcePluginServiceServer
	impl Source
}

func (s *grpcServer) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, callErrorToStatus(err)
	}
	out := &pluginv1.DescribeResponse{
		Type:           d.Type,
		DisplayName:    d.DisplayName,
		Version:        d.Version,
		ProtocolMinor:  ProtocolMinor,
		IdempotencyKey: d.IdempotencyKey,
	}
	for _, st := range d.Settings {
		out.Settings = append(out.Settings, &pluginv1.Setting{
			Key: st.Key, Description: st.Description, Secret: st.Secret, Required: st.Required,
		})
	}
	return out, nil
}

func (s *grpcServer) Translate(ctx context.Context, req *pluginv1.TranslateRequest) (*pluginv1.TranslateResponse, error) {
	ds := make([]Delivery, len(req.GetDeliveries()))
	for i, d := range req.GetDeliveries() {
		h := make(http.Header, len(d.GetHeaders()))
		for _, kv := range d.GetHeaders() {
			h.Add(kv.GetName(), string(kv.GetValue()))
		}
		ds[i] = Delivery{Header: h, Body: d.GetBody(), ContentType: d.GetContentType(), Settings: d.GetSettings()}
	}
	results, err := s.impl.Translate(ctx, ds)
	if err != nil {
		return nil, callErrorToStatus(err)
	}
	if len(results) != len(ds) {
		return nil, callErrorToStatus(fmt.Errorf("plugin returned %d results for %d deliveries", len(results), len(ds)))
	}
	out := &pluginv1.TranslateResponse{Results: make([]*pluginv1.DeliveryResult, len(results))}
	for i, r := range results {
		out.Results[i] = resultToProto(r)
	}
	return out, nil
}

// grpcClient runs in the host and implements Source by calling the plugin.
type grpcClient struct {
	c pluginv1.SourcePluginServiceClient
}

func (c *grpcClient) Describe(ctx context.Context) (Description, error) {
	resp, err := c.c.Describe(ctx, &pluginv1.DescribeRequest{})
	if err != nil {
		return Description{}, callErrorFromStatus(err)
	}
	d := Description{
		Type:           resp.GetType(),
		DisplayName:    resp.GetDisplayName(),
		Version:        resp.GetVersion(),
		IdempotencyKey: resp.GetIdempotencyKey(),
		ProtocolMinor:  int(resp.GetProtocolMinor()),
	}
	for _, st := range resp.GetSettings() {
		d.Settings = append(d.Settings, Setting{
			Key: st.GetKey(), Description: st.GetDescription(), Secret: st.GetSecret(), Required: st.GetRequired(),
		})
	}
	return d, nil
}

func (c *grpcClient) Translate(ctx context.Context, deliveries []Delivery) ([]Result, error) {
	req := &pluginv1.TranslateRequest{Deliveries: make([]*pluginv1.Delivery, len(deliveries))}
	for i, d := range deliveries {
		pd := &pluginv1.Delivery{Body: d.Body, ContentType: strings.ToValidUTF8(d.ContentType, "\uFFFD"), Settings: d.Settings}
		for name, values := range d.Header {
			for _, v := range values {
				pd.Headers = append(pd.Headers, &pluginv1.Header{Name: strings.ToValidUTF8(name, "\uFFFD"), Value: []byte(v)})
			}
		}
		req.Deliveries[i] = pd
	}
	resp, err := c.c.Translate(ctx, req)
	if err != nil {
		return nil, callErrorFromStatus(err)
	}
	if len(resp.GetResults()) != len(deliveries) {
		return nil, fmt.Errorf("source plugin returned %d results for %d deliveries", len(resp.GetResults()), len(deliveries))
	}
	out := make([]Result, len(deliveries))
	for i, r := range resp.GetResults() {
		out[i] = resultFromProto(r)
	}
	return out, nil
}

func resultToProto(r Result) *pluginv1.DeliveryResult {
	out := &pluginv1.DeliveryResult{}
	if r.Err != nil {
		out.ErrorCode, out.ErrorMessage = deliveryErrorToProto(r.Err)
		return out
	}
	out.Events = make([]*pluginv1.Event, len(r.Events))
	for i, e := range r.Events {
		pe := &pluginv1.Event{
			Index:              int32(e.Index),
			Type:               e.Type,
			Name:               e.Name,
			UserId:             e.UserID,
			AnonymousId:        e.AnonymousID,
			IdempotencyKeyJson: e.IdempotencyKey,
			DataJson:           e.Data,
			TraitsJson:         e.Traits,
			EventJson:          e.Original,
		}
		if !e.Timestamp.IsZero() {
			pe.Timestamp = timestamppb.New(e.Timestamp)
		}
		out.Events[i] = pe
	}
	for _, rej := range r.Rejections {
		out.Rejections = append(out.Rejections, &pluginv1.Rejection{Index: int32(rej.Index), Reason: rej.Reason})
	}
	return out
}

func resultFromProto(r *pluginv1.DeliveryResult) Result {
	if err := deliveryErrorFromProto(r.GetErrorCode(), r.GetErrorMessage()); err != nil {
		return Result{Err: err}
	}
	out := Result{Events: make([]Event, len(r.GetEvents()))}
	for i, e := range r.GetEvents() {
		ev := Event{
			Index:          int(e.GetIndex()),
			Type:           e.GetType(),
			Name:           e.GetName(),
			UserID:         e.GetUserId(),
			AnonymousID:    e.GetAnonymousId(),
			IdempotencyKey: e.GetIdempotencyKeyJson(),
			Data:           e.GetDataJson(),
			Traits:         e.GetTraitsJson(),
			Original:       e.GetEventJson(),
		}
		if e.GetTimestamp() != nil {
			ev.Timestamp = e.GetTimestamp().AsTime()
		}
		out.Events[i] = ev
	}
	for _, rej := range r.GetRejections() {
		out.Rejections = append(out.Rejections, Rejection{Index: int(rej.GetIndex()), Reason: rej.GetReason()})
	}
	return out
}
