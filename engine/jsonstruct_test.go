package engine

import (
	"reflect"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// jsonStructSeeds cover the grammar and protojson's rules.
var jsonStructSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e-3,"b":1E+2,"c":0}`, `{"s":"x\"y\\z\/\b\f\n\r\t"}`,
	`{"u":"\u00fc\u4e2d\ud83d\ude00"}`, `{"u":"Müller 中 😀"}`, `{"l":[1,"a",true,false,null,{},[]]}`,
	`{"n":{"m":{"o":[{"p":null}]}}}`, `{"a":1,"a":2}`, `{"big":1e400}`, `{"neg":-1e400}`, `{"tiny":1e-400}`,
	`{"x":01}`, `{"x":1.}`, `{"x":.5}`, `{"x":-}`, `{"x":+1}`, `{"x":1e}`, `{"x":tru}`, `{"x":nul}`,
	`{"x":"\ud800"}`, `{"x":"\udc00"}`, `{"x":"\ud800\u0041"}`, `{"x":"\q"}`, `{"x":"\u12G4"}`,
	"{\"x\":\"a\x01b\"}", "{\"x\":\"\xff\"}", "{\"\xfe\":1}", `{"x":1,}`, `{,}`, `{"x"}`, `{"x":1 "y":2}`,
	`[1]`, `"s"`, `1`, `{"x":1} x`, `{"x":1}}`, `{"x":[1,]}`, `{"x":[,1]}`, ``, `{`, `{"x":`,
	`{"x":123456789012345678901234567890}`, `{"x":1.7976931348623157e308}`, `{"x":2e308}`,
	`{"x":"\u0000"}`, `{"":""}`, `{"x":"\/"}`, "{\"x\":\t1\r\n}",
}

// TestDecodeStructMatchesProtojson holds decodeStruct to protojson: the same
// inputs succeed, with the same Struct, and the same fail.
func TestDecodeStructMatchesProtojson(t *testing.T) {
	t.Parallel()
	for _, in := range jsonStructSeeds {
		checkDecodeStruct(t, []byte(in))
	}
}

func FuzzDecodeStruct(f *testing.F) {
	for _, s := range jsonStructSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeStruct(t, b) })
}

// checkDecodeStruct holds decodeStruct to protojson, and the ingest path's
// checkObject and decodeObject to decodeStruct: the same inputs are valid,
// and decodeObject gives the Go values of decodeStruct's Struct.
func checkDecodeStruct(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodeStruct(b)
	want := &structpb.Struct{}
	wantErr := protojson.Unmarshal(b, want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("decodeStruct(%q): err %v; protojson: err %v", b, gotErr, wantErr)
	case gotErr == nil && !sameStruct(got, want):
		t.Fatalf("decodeStruct(%q) = %v; protojson = %v", b, got, want)
	}
	if err := checkObject(b); (err == nil) != (gotErr == nil) {
		t.Fatalf("checkObject(%q) = %v; decodeStruct: err %v", b, err, gotErr)
	}
	if gotErr == nil {
		if m := decodeObject(b); !reflect.DeepEqual(m, got.AsMap()) {
			t.Fatalf("decodeObject(%q) = %#v; decodeStruct's = %#v", b, m, got.AsMap())
		}
	}
}

// sameStruct is proto.Equal, except that decodeStruct keeps a number a
// float64 cannot hold exactly as its text: such a string stands for the
// number protojson read from the same text.
func sameStruct(got, want *structpb.Struct) bool {
	if len(got.GetFields()) != len(want.GetFields()) {
		return false
	}
	for k, g := range got.GetFields() {
		w, ok := want.GetFields()[k]
		if !ok || !sameValue(g, w) {
			return false
		}
	}
	return true
}

func sameValue(got, want *structpb.Value) bool {
	switch g := got.GetKind().(type) {
	case *structpb.Value_StructValue:
		return want.GetStructValue() != nil && sameStruct(g.StructValue, want.GetStructValue())
	case *structpb.Value_ListValue:
		wl := want.GetListValue()
		if wl == nil || len(wl.GetValues()) != len(g.ListValue.GetValues()) {
			return false
		}
		for i, v := range g.ListValue.GetValues() {
			if !sameValue(v, wl.GetValues()[i]) {
				return false
			}
		}
		return true
	case *structpb.Value_StringValue:
		if n, ok := want.GetKind().(*structpb.Value_NumberValue); ok {
			f, err := strconv.ParseFloat(g.StringValue, 64)
			return err == nil && f == n.NumberValue && !exactFloat([]byte(g.StringValue), f)
		}
	}
	return proto.Equal(got, want)
}

// TestDecodeStructKeepsInexactNumbers: numbers a float64 holds exactly stay
// numbers; others keep their digits as text (issue: a 20-digit amount came
// back rounded).
func TestDecodeStructKeepsInexactNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want *structpb.Value
	}{
		{`12345678901234567891`, structpb.NewStringValue("12345678901234567891")},
		{`-12345678901234567891`, structpb.NewStringValue("-12345678901234567891")},
		{`9007199254740993`, structpb.NewStringValue("9007199254740993")}, // 2^53+1
		{`9007199254740992`, structpb.NewNumberValue(9007199254740992)},   // 2^53
		{`0.1`, structpb.NewNumberValue(0.1)},
		{`0.30000000000000004`, structpb.NewNumberValue(0.30000000000000004)},
		{`3.14159265358979323846`, structpb.NewStringValue("3.14159265358979323846")},
		{`1e21`, structpb.NewNumberValue(1e21)},
		{`1000000000000000000000`, structpb.NewNumberValue(1e21)},
		{`120.000000000000000000`, structpb.NewNumberValue(120)},
		{`0.000000000000000000001`, structpb.NewNumberValue(1e-21)},
		{`42`, structpb.NewNumberValue(42)},
		{`-0`, structpb.NewNumberValue(0)},
	}
	for _, tt := range tests {
		s, err := decodeStruct([]byte(`{"n":` + tt.in + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got := s.GetFields()["n"]; !proto.Equal(got, tt.want) {
			t.Errorf("%s decodes to %v, want %v", tt.in, got, tt.want)
		}
	}
}
