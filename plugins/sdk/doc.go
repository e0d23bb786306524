// Package sdk is what a hark source plugin imports.
//
// A source plugin turns the raw HTTP deliveries a customer-data platform
// makes (Segment, RudderStack, a home-grown HTTP sender) into events in
// hark's common form: type, name, user and anonymous ids, idempotency key,
// timestamp, data, traits and the original event. hark runs each plugin as a
// separate process (hashicorp/go-plugin over gRPC), so a plugin that crashes
// or hangs cannot take hark down with it.
//
// Writing a plugin takes three steps:
//
//  1. Implement Source: Describe says who the plugin is and which settings a
//     source environment may give it; Translate turns a batch of deliveries
//     into results, one per delivery, in order. TranslateEach adapts a
//     per-delivery function.
//  2. Call Serve(yourSource) from main.
//  3. Build the binary as `hark-source-<type>` into hark's plugin directory
//     (`--plugin-dir`, default `<data-dir>/plugins`).
//
// Refuse a whole delivery with BadRequest (HTTP 400: the sender should not
// retry) or BadSignature (HTTP 401); refuse single events of a batch with a
// Rejection. Return an error from Translate only when the plugin cannot work
// at all: every delivery of the batch is then answered 503, and senders
// retry.
//
// Test a plugin in-process with TestSource, which runs it over a real gRPC
// connection without a subprocess.
//
// The protocol is versioned as major.minor: a major version is a new proto
// package, a minor only adds, and the host reads the plugin's minor from
// Describe. This package speaks 1.1 (ProtocolMinor): hark sends batches over
// one long-lived TranslateStream instead of a call each, and plugins of 1.0
// still get calls. Nothing changes for a plugin's code; but an answer costs
// less to send when an event's Original is a slice of its delivery's Body
// and its Data and Traits are slices of Original (as plugins/segment's are):
// those go back to hark as offsets into bytes it already holds, not as the
// same JSON again. Copies work too, and a Body the plugin changed in place is
// sent as it is now.
//
// The package imports nothing from hark's engine or server: the protocol in
// proto/hark/plugin/v1 and this package are the whole contract.
package sdk
