package server

import (
	"context"
	"fmt"
	"log/slog"
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
// engine types, so it is also where a plugin's answer is checked: hark
// passes on only what the delivery could hold, and never a plugin's
// megabytes.
type pluginSources struct {
	h       *host.Host
	metrics *metrics
	// log receives the details of answers refused as invalid; nil discards
	// them.
	log *slog.Logger
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
		set := &harkv1.SourceTypeSetting{Key: s.Key, Description: s.Description, Secret: s.Secret, Required: s.Required}
		for _, c := range s.RequiredWhen {
			set.RequiredWhen = append(set.RequiredWhen, &harkv1.SourceTypeSettingCondition{Setting: c.Setting, Values: c.Values, Except: c.Except})
		}
		st.Settings = append(st.Settings, set)
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
		out[i] = p.translation(typ, r)
	}
	return out, nil
}

// errInvalidAnswer is what the sender of a delivery is told when the
// plugin's answer for it is invalid; the details are logged, not echoed.
const errInvalidAnswer = "the source plugin returned an invalid answer for this delivery"

// translation turns one delivery's result into the engine's form. A result
// whose event indexes do not fit the delivery (see checkIndexes) is a plugin
// failure for that delivery: the engine would store and answer what the
// plugin made up. Reasons and messages are cut to host.MaxMessageBytes of
// valid UTF-8, since they are shown to the sender.
func (p pluginSources) translation(typ string, r sdk.Result) engine.Translation {
	if r.Err != nil {
		kind := engine.PluginFailed
		switch r.Err.Code {
		case sdk.CodeBadRequest:
			kind = engine.BadRequest
		case sdk.CodeBadSignature:
			kind = engine.BadSignature
		}
		return engine.Translation{Err: &engine.DeliveryError{Kind: kind, Message: host.TrimMessage(r.Err.Message)}}
	}
	if err := checkIndexes(r); err != nil {
		if p.log != nil {
			p.log.Warn("source plugin answered a delivery with invalid event indexes; failing the delivery", "source_type", typ, "err", err)
		}
		return engine.Translation{Err: &engine.DeliveryError{Kind: engine.PluginFailed, Message: errInvalidAnswer}}
	}
	// One block for the events and one for the rejections: the JSON parts
	// are passed on as they are (slices of the delivery's body, for a
	// plugin of protocol 1.1), never copied.
	t := engine.Translation{Events: make([]engine.InEvent, len(r.Events))}
	for i, e := range r.Events {
		t.Events[i] = engine.InEvent{
			Index: e.Index, Type: e.Type, Name: e.Name, UserID: e.UserID, AnonymousID: e.AnonymousID,
			IdempotencyKey: e.IdempotencyKey, Timestamp: e.Timestamp,
			Data: e.Data, Traits: e.Traits, Original: e.Original,
		}
	}
	if len(r.Rejections) > 0 {
		t.Rejections = make([]engine.Rejection, len(r.Rejections))
		for i, rej := range r.Rejections {
			t.Rejections[i] = engine.Rejection{Index: rej.Index, Reason: host.TrimMessage(rej.Reason)}
		}
	}
	return t
}

// checkIndexes checks that the events and rejections of a result each name
// a different event of the delivery: with n of them in all, their indexes
// must be 0…n-1, each once. (A plugin that drops an event, or invents one,
// cannot satisfy this, and the answer's "one entry per incoming event, in
// order" depends on it.)
func checkIndexes(r sdk.Result) error {
	n := len(r.Events) + len(r.Rejections)
	// A bit per event, on the stack for every delivery Segment can send
	// (4,000 events at most).
	var onStack [64]uint64
	seen := onStack[:]
	if words := (n + 63) / 64; words > len(onStack) {
		seen = make([]uint64, words)
	}
	check := func(what string, i int) error {
		switch {
		case i < 0 || i >= n:
			return fmt.Errorf("%s index %d is outside the %d events of its answer", what, i, n)
		case seen[i/64]&(1<<(i%64)) != 0:
			return fmt.Errorf("%s index %d is given twice", what, i)
		}
		seen[i/64] |= 1 << (i % 64)
		return nil
	}
	for _, e := range r.Events {
		if err := check("event", e.Index); err != nil {
			return err
		}
	}
	for _, rej := range r.Rejections {
		if err := check("rejection", rej.Index); err != nil {
			return err
		}
	}
	return nil
}
