package host

import (
	"context"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger returns the hclog.Logger go-plugin wants, forwarding to slog
// with the plugin's type. go-plugin parses the plugin's JSON log lines from
// its stderr and re-logs them here.
func newHCLogger(log *slog.Logger, typ string) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Trace, Output: io.Discard})
	l.RegisterSink(slogSink{log: log.With("source_type", typ)})
	return l
}

// slogSink forwards hclog records to slog.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case hclog.Trace, hclog.Debug:
		lv = slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		lv = slog.LevelInfo
	case hclog.Warn:
		lv = slog.LevelWarn
	default:
		lv = slog.LevelError
	}
	s.log.Log(context.Background(), lv, msg, append(args, "logger", name)...)
}
