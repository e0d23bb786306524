package server

import (
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonCodec is Connect's JSON codec with unpopulated fields written out and
// unknown fields refused (strictJSON). Vanguard writes unpopulated fields in
// REST responses when it re-encodes them (routes with response_body), but
// passes a Connect JSON body through as it is; this makes both paths agree,
// so `"index": 0` and `"identifyEnabled": false` appear in every JSON
// response instead of only some.
type jsonCodec struct{}

var _ connect.Codec = jsonCodec{}

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) Marshal(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("json codec: %T is not a proto.Message", m)
	}
	return protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(msg)
}

func (jsonCodec) Unmarshal(b []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("json codec: %T is not a proto.Message", m)
	}
	return strictJSON.Unmarshal(b, msg)
}

// strictJSON refuses unknown fields (Connect answers InvalidArgument, with
// protojson's `unknown field "evnt"`), unlike Connect's and vanguard's own
// codecs. hark's requests are mostly writes a person types: a misspelt field
// silently dropped saves something else than was meant — a trigger whose
// `condtion` is dropped has no condition and starts its workflow for every
// matching event. A client built against a newer API learns at once that
// this server lacks the field. Discarding would also drop unknown enum
// names (`"status": "TRIGGER_STATUS_INACTIV"`); those are refused too.
var strictJSON = protojson.UnmarshalOptions{}

// restJSONCodec is vanguard's JSON codec with strictJSON, so a REST body is
// refused on an unknown field as a Connect JSON body is: vanguard decodes
// REST bodies itself and hands the handlers binary protobuf.
func restJSONCodec(res vanguard.TypeResolver) vanguard.Codec {
	c := vanguard.NewJSONCodec(res)
	c.UnmarshalOptions = strictJSON
	c.UnmarshalOptions.Resolver = res
	return restJSON{c}
}

// restJSON is vanguard's JSON codec whose body errors are InvalidArgument:
// vanguard would report them as internal errors (500), which senders retry.
type restJSON struct{ *vanguard.JSONCodec }

var _ vanguard.RESTCodec = restJSON{}

func (c restJSON) Unmarshal(b []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(b, msg); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid request body: %w", err))
	}
	return nil
}
