package engine

import (
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

func checkDecodeStruct(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := decodeStruct(b)
	want := &structpb.Struct{}
	wantErr := protojson.Unmarshal(b, want)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("decodeStruct(%q): err %v; protojson: err %v", b, gotErr, wantErr)
	case gotErr == nil && !proto.Equal(got, want):
		t.Fatalf("decodeStruct(%q) = %v; protojson = %v", b, got, want)
	}
}
