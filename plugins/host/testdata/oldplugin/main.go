// Command oldplugin is a source plugin of protocol 1.0, as one built with
// the SDK before TranslateStream existed answers: it serves Describe and
// Translate only (TranslateStream answers Unimplemented), over go-plugin
// and the generated protocol, without plugins/sdk's server. The host's
// tests run it to check that hosts still call such plugins.
//
// Its type is HARK_TESTPLUGIN_TYPE. HARK_OLDPLUGIN_MINOR, when set, is the
// protocol minor it claims in Describe, so a test can run a plugin that
// claims 1.1 without serving TranslateStream. Every delivery becomes one
// track event whose name is the gRPC method the batch came by.
package main

import (
	"context"
	"os"
	"strconv"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
	"github.com/harkhq/hark/plugins/sdk"
)

func main() {
	minor, _ := strconv.Atoi(os.Getenv("HARK_OLDPLUGIN_MINOR"))
	srv := &server{typ: os.Getenv("HARK_TESTPLUGIN_TYPE"), minor: uint32(minor)}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{1: {sdk.PluginName: &grpcPlugin{srv: srv}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// grpcPlugin registers the server; it is never used on the host's side.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterSourcePluginServiceServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

type server struct {
	pluginv1.UnimplementedSourcePluginServiceServer
	typ   string
	minor uint32
}

func (s *server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return &pluginv1.DescribeResponse{Type: s.typ, DisplayName: "Old " + s.typ, Version: "1.0.0", ProtocolMinor: s.minor}, nil
}

func (s *server) Translate(ctx context.Context, req *pluginv1.TranslateRequest) (*pluginv1.TranslateResponse, error) {
	method, _ := grpc.Method(ctx)
	out := &pluginv1.TranslateResponse{}
	for _, d := range req.GetDeliveries() {
		out.Results = append(out.Results, &pluginv1.DeliveryResult{Events: []*pluginv1.Event{{
			Type: "track", Name: method, EventJson: d.GetBody(), DataJson: []byte(`{"old":true}`),
		}}})
	}
	return out, nil
}
