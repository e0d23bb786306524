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
// The package imports nothing from hark's engine or server: the protocol in
// proto/hark/plugin/v1 and this package are the whole contract.
package sdk
