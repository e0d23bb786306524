package sdk

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// ProtocolMinor is the minor version of protocol 1 this package speaks. Minor
// versions only add; a host reads the plugin's minor from Describe:
//
//   - 0: Describe and Translate.
//   - 1: TranslateStream (see StreamSource), with events that give their
//     parts as offsets and deliveries that carry their headers as one block.
const ProtocolMinor = 1

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
		ps := &pluginv1.Setting{Key: st.Key, Description: st.Description, Secret: st.Secret, Required: st.Required}
		for _, c := range st.RequiredWhen {
			ps.RequiredWhen = append(ps.RequiredWhen, &pluginv1.SettingCondition{Setting: c.Setting, Values: c.Values, Except: c.Except})
		}
		out.Settings = append(out.Settings, ps)
	}
	return out, nil
}

func (s *grpcServer) Translate(ctx context.Context, req *pluginv1.TranslateRequest) (*pluginv1.TranslateResponse, error) {
	resp, err := s.translate(ctx, req, false)
	if err != nil {
		return nil, callErrorToStatus(err)
	}
	return resp, nil
}

// translate runs one batch through the author's Source. With lean (the
// stream), parts of the answer that are slices of what the plugin received
// go as offsets (see resultToWire); a body the Source changed in place is
// not offered as the place of anything, since the host holds it as sent.
func (s *grpcServer) translate(ctx context.Context, req *pluginv1.TranslateRequest, lean bool) (*pluginv1.TranslateResponse, error) {
	ds, err := deliveriesFromProto(req)
	if err != nil {
		return nil, err
	}
	var sums []uint32
	if lean {
		sums = make([]uint32, len(ds))
		for i, d := range ds {
			sums[i] = checksum(d.Body)
		}
	}
	results, err := s.impl.Translate(ctx, ds)
	if err != nil {
		return nil, err
	}
	if len(results) != len(ds) {
		return nil, fmt.Errorf("plugin returned %d results for %d deliveries", len(results), len(ds))
	}
	out := &pluginv1.TranslateResponse{Results: make([]*pluginv1.DeliveryResult, len(results))}
	for i, r := range results {
		var body []byte
		if lean && checksum(ds[i].Body) == sums[i] {
			body = ds[i].Body
		}
		out.Results[i] = resultToWire(r, body, lean)
	}
	return out, nil
}

// grpcClient runs in the host and implements Source by calling the plugin:
// a call per batch, or a message on the plugin's TranslateStream once
// OpenStream succeeded (see StreamSource).
type grpcClient struct {
	c   pluginv1.SourcePluginServiceClient
	ids atomic.Uint64 // batch ids on streams, from 1

	mu      sync.Mutex
	open    bool               // between OpenStream and CloseStream
	cur     *clientStream      // the stream batches go over; reopened when broken
	life    context.Context    // the streams' lifetime, ended by CloseStream
	end     context.CancelFunc // ends life
	streams []*clientStream    // opened since OpenStream, for CloseStream to wait for
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
		set := Setting{Key: st.GetKey(), Description: st.GetDescription(), Secret: st.GetSecret(), Required: st.GetRequired()}
		for _, c := range st.GetRequiredWhen() {
			set.RequiredWhen = append(set.RequiredWhen, Condition{Setting: c.GetSetting(), Values: c.GetValues(), Except: c.GetExcept()})
		}
		d.Settings = append(d.Settings, set)
	}
	return d, nil
}

func (c *grpcClient) Translate(ctx context.Context, deliveries []Delivery) ([]Result, error) {
	st, err := c.stream(ctx)
	if err != nil {
		return nil, err
	}
	if st != nil {
		return c.translateOverStream(ctx, st, deliveries)
	}
	req, err := deliveriesToProto(deliveries, false)
	if err != nil {
		return nil, err
	}
	resp, err := c.c.Translate(ctx, req)
	if err != nil {
		return nil, callErrorFromStatus(err)
	}
	return resultsFromProto(resp, deliveries)
}

// resultsFromProto pairs an answer's results with the batch's deliveries.
func resultsFromProto(resp *pluginv1.TranslateResponse, deliveries []Delivery) ([]Result, error) {
	if len(resp.GetResults()) != len(deliveries) {
		return nil, fmt.Errorf("source plugin returned %d results for %d deliveries", len(resp.GetResults()), len(deliveries))
	}
	out := make([]Result, len(deliveries))
	for i, r := range resp.GetResults() {
		out[i] = resultFromWire(r, deliveries[i].Body)
	}
	return out, nil
}
