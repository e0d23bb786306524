package sdk

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pluginv1 "github.com/harkhq/hark/gen/hark/plugin/v1"
)

// ProtocolVersion is the major version of the plugin protocol. A new major
// version is a new proto package (hark.plugin.v2) and a new entry in
// PluginSets; hosts and plugins agree on the highest version both speak.
const ProtocolVersion = 1

// PluginName is the name the source plugin is dispensed under.
const PluginName = "source"

// Handshake is shared by hark and its plugins. The magic cookie is a UX
// feature, not a security feature: it makes a plugin binary run by hand say
// that it is a plugin instead of waiting for a host.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "HARK_SOURCE_PLUGIN",
	MagicCookieValue: "7d1f3c2a-hark-source-plugin-v1",
}

// PluginSets maps each protocol version a host speaks to its plugins. Hosts
// pass it as go-plugin's VersionedPlugins; impl may be nil there.
func PluginSets(impl Source) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &grpcPlugin{impl: impl}},
	}
}

// MaxMessageBytes bounds one plugin call's request and response. gRPC's
// default of 4 MiB is smaller than what one full delivery translates to (a
// 4 MiB body becomes its events plus their data and originals), and a batched
// call carries many deliveries; the host bounds batches, so this only has to
// be larger than any batch it sends.
const MaxMessageBytes = 256 << 20

// Flow-control windows of plugin connections, both ways. Fixed windows turn
// off gRPC's bandwidth-delay estimation, which answers data with a ping to
// measure the link: on a local socket there is nothing to measure, and the
// pings cost each round trip about as many writes, reads and wake-ups as the
// batch itself. The windows are large enough that a full 4 MiB delivery
// streams through without waiting for window updates.
const (
	streamWindowBytes = 8 << 20
	connWindowBytes   = 16 << 20
)

// GRPCDialOptions are the options hosts dial plugins with (go-plugin's
// ClientConfig.GRPCDialOptions): message limits and windows that match
// Serve's.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
		grpc.WithInitialWindowSize(streamWindowBytes),
		grpc.WithInitialConnWindowSize(connWindowBytes),
	}
}

// grpcServerOptions are the server's side of GRPCDialOptions.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(streamWindowBytes), grpc.InitialConnWindowSize(connWindowBytes),
	}
}

// Serve serves src as a hark source plugin and returns when the host is done
// with it. Call it from the plugin's main; it does not return on a
// handshake failure (it exits the process, as go-plugin does).
func Serve(src Source) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginSets(src),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpcServerOptions()...)...)
		},
	})
}

// Logger returns a slog.Logger whose records reach hark's log under the
// plugin's name: it writes JSON lines to stderr in the shape go-plugin's host
// parses (@level, @message, @timestamp).
func Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			}
			return a
		},
	}))
}

// TestSource runs src behind a real gRPC connection on loopback inside the
// test process, without a subprocess, and returns the host's view of it:
// what hark would call, with the same message limits, sending batches over
// the plugin's TranslateStream as hark does. The connection closes when the
// test ends.
func TestSource(t testing.TB, src Source) Source {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the test plugin: %v", err)
	}
	server := grpc.NewServer(grpcServerOptions()...)
	pluginv1.RegisterSourcePluginServiceServer(server, &grpcServer{impl: src})
	go func() { _ = server.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(),
		append(GRPCDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		server.Stop()
		t.Fatalf("dial the test plugin: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		server.Stop()
	})
	c := &grpcClient{c: pluginv1.NewSourcePluginServiceClient(conn)}
	ctx, cancel := context.WithTimeout(context.Background(), testStreamWait)
	defer cancel()
	if err := c.OpenStream(ctx); err != nil {
		t.Fatalf("open the test plugin's translate stream: %v", err)
	}
	t.Cleanup(c.CloseStream)
	return c
}

// testStreamWait bounds how long TestSource waits for its stream to open:
// milliseconds on loopback, but a test machine may be busy.
const testStreamWait = time.Minute
