// Package delivery turns one delivery — a workflow run change on its way to
// one destination — into one HTTP attempt, and says what the attempt means
// for the delivery. It holds no state: the engine's outbox stores the
// deliveries, its workers decide when to call Client.Send, and they record
// the Attempt it returns (DESIGN §8).
//
// # Lifecycle of a delivery
//
// A delivery is written in the same commit as the run change it carries
// (`workflow_run.created` or `workflow_run.cancelled`), one per matching
// destination. A worker then calls Client.Send with the destination (a
// Target) and the change (a Message) and gets an Attempt back:
//
//   - Attempt.Succeeded (a 2xx answer): the delivery is SUCCEEDED.
//   - Attempt.Disable (410 Gone): the receiver asked never to be called
//     again; the destination is DISABLED and the delivery waits with it.
//   - Attempt.Permanent: the request could not even be built (a missing
//     setting, a cancelled run without a cancellation key); retrying the
//     same delivery cannot help, so it is FAILED at once and RetryDelivery
//     starts it again once the destination is fixed.
//   - Anything else is a failed attempt: RetryDelay, with the destination's
//     Schedule (DefaultSchedule unless `--delivery-retry-schedule` says
//     otherwise) and the receiver's Retry-After hint, says when the next
//     attempt is due, or that none is left and the delivery is FAILED.
//
// # Failure modes, said plainly
//
// Delivery is at least once: an attempt whose answer is lost (a timeout
// after the receiver acted, a crash before the outcome is stored) is sent
// again. Receivers deduplicate by `webhook-id`, which is the delivery id and
// the same on every attempt; Knock deduplicates by the `Idempotency-Key`
// (the run id) and Segment by each track's messageId (derived from the
// delivery id and the recipient). Order across runs is not promised.
//
// Every attempt is bounded: 15 seconds (Options.Timeout) for the whole
// attempt, redirects are not followed (a 3xx is a failed attempt, as a
// receiver that moved must be updated, not guessed), and only the first
// 1 KiB of an answer is kept.
//
// Destinations may not reach loopback, private, link-local (including the
// cloud metadata address 169.254.169.254), CGNAT, multicast or unspecified
// addresses, in IPv4, IPv6 or IPv4-mapped form, unless Options.AllowPrivate
// is set (`--allow-private-destinations`). The check runs when the
// connection is made, on the address actually dialled, so a name that
// resolves to 127.0.0.1 (or is re-pointed there after the URL was saved) is
// refused too; ValidateURL gives the early, friendlier error at save time.
// Environment proxy settings are ignored, as a proxy would dial on hark's
// behalf past the check.
//
// # What is sent
//
//   - webhook: POST url, `{"type":…,"timestamp":RFC 3339,"data":<WorkflowRun
//     as protojson>}`, signed per the Standard Webhooks spec (Sign).
//   - knock: POST {url}/v1/workflows/{key}/trigger with Knock's body and
//     `Idempotency-Key: <run id>`, or …/cancel for a cancellation, with
//     `Authorization: Bearer <api_key>`.
//   - segment: POST {url}/v1/batch with one `track` per recipient, the
//     write key as Basic auth; a batch over Segment's limits is split into
//     several requests, all of which must succeed for the attempt to.
//
// Client is safe for concurrent use.
package delivery
