package server

import (
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonCodec is Connect's JSON codec with unpopulated fields written out.
// Vanguard writes REST responses that way when it re-encodes them (routes
// with response_body), but passes a Connect JSON body through as it is; this
// makes both paths agree, so `"index": 0` and `"identifyEnabled": false`
// appear in every JSON response instead of only some.
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
	// Unknown fields are ignored, as Connect's own codec does, so clients
	// built against a newer API keep working.
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, msg)
}
