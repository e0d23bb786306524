package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"github.com/harkhq/hark/plugins/host"
	"github.com/harkhq/hark/plugins/sdk"
)

// pluginSources adapts the plugin host to what the engine needs: the
// installed source types (engine.SourceTypes) and translation
// (engine.Translator). It is the one place where plugin SDK types become
// engine types.
type pluginSources struct {
	h       *host.Host
	metrics *metrics
}

var (
	_ engine.SourceTypes = pluginSources{}
	_ engine.Translator  = pluginSources{}
)

func (p pluginSources) SourceType(name string) (*harkv1.SourceType, bool) {
	info, ok := p.h.Type(name)
	if !ok {
		return nil, false
	}
	return sourceType(info), true
}

func (p pluginSources) SourceTypes() []*harkv1.SourceType {
	infos := p.h.Types()
	out := make([]*harkv1.SourceType, len(infos))
	for i, info := range infos {
		out[i] = sourceType(info)
	}
	return out
}

func sourceType(info host.Info) *harkv1.SourceType {
	d := info.Description
	st := &harkv1.SourceType{
		Type:            info.Type,
		DisplayName:     d.DisplayName,
		Version:         d.Version,
		IdempotencyKey:  d.IdempotencyKey,
		Health:          harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_UNAVAILABLE,
		Origin:          harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_PLUGIN_DIR,
		ProtocolVersion: strconv.Itoa(sdk.ProtocolVersion) + "." + strconv.Itoa(int(d.ProtocolMinor)),
	}
	if info.Healthy {
		st.Health = harkv1.SourceTypeHealth_SOURCE_TYPE_HEALTH_SERVING
	}
	if info.Origin == host.BuiltIn {
		st.Origin = harkv1.SourceTypeOrigin_SOURCE_TYPE_ORIGIN_BUILT_IN
	}
	for _, s := range d.Settings {
		st.Settings = append(st.Settings, &harkv1.SourceTypeSetting{
			Key: s.Key, Description: s.Description, Secret: s.Secret, Required: s.Required,
		})
	}
	return st
}

// Translate calls the plugin. Any failure of the call itself — the plugin is
// down, restarting, stuck past its deadline, or no longer installed — is
// Unavailable: the delivery was not processed and a retry may succeed.
func (p pluginSources) Translate(ctx context.Context, typ string, ds []engine.Delivery) ([]engine.Translation, error) {
	in := make([]sdk.Delivery, len(ds))
	for i, d := range ds {
		in[i] = sdk.Delivery{Header: d.Header, Body: d.Body, ContentType: d.ContentType, Settings: d.Settings}
	}
	began := time.Now()
	res, err := p.h.Translate(ctx, typ, in)
	p.metrics.pluginCall(typ, time.Since(began), err)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrUnavailable, err)
	}
	out := make([]engine.Translation, len(res))
	for i, r := range res {
		out[i] = translation(r)
	}
	return out, nil
}

func translation(r sdk.Result) engine.Translation {
	if r.Err != nil {
		kind := engine.PluginFailed
		switch r.Err.Code {
		case sdk.CodeBadRequest:
			kind = engine.BadRequest
		case sdk.CodeBadSignature:
			kind = engine.BadSignature
		}
		return engine.Translation{Err: &engine.DeliveryError{Kind: kind, Message: r.Err.Message}}
	}
	t := engine.Translation{Events: make([]engine.InEvent, len(r.Events))}
	for i, e := range r.Events {
		t.Events[i] = engine.InEvent{
			Index: e.Index, Type: e.Type, Name: e.Name, UserID: e.UserID, AnonymousID: e.AnonymousID,
			IdempotencyKey: e.IdempotencyKey, Timestamp: e.Timestamp,
			Data: e.Data, Traits: e.Traits, Original: e.Original,
		}
	}
	for _, rej := range r.Rejections {
		t.Rejections = append(t.Rejections, engine.Rejection{Index: rej.Index, Reason: rej.Reason})
	}
	return t
}
