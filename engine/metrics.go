package engine

import (
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// Metrics receives what the engine counts. The server implements it with
// Prometheus; the engine does not depend on a metrics library. Methods are
// called from the ingest stages and must not block.
type Metrics interface {
	// EventLogged counts one logged event of a source type with its status.
	EventLogged(sourceType, eventType string, status harkv1.SourceEventStatus)
	// DeliveryRejected counts one refused delivery (400/401/503 …).
	DeliveryRejected(reason string)
	// Committed reports one ingest commit: its events, how long it took, and
	// whether it failed.
	Committed(events int, took time.Duration, err error)
	// TriggerEvaluated counts one trigger outcome.
	TriggerEvaluated(status harkv1.ActionStatus)
	// RunStarted counts one workflow run started (by a trigger or the API).
	RunStarted(fromTrigger bool)
	// DeliveryAttempted counts one attempt at sending a delivery to a
	// destination of a type, with its result (succeeded, failed — it will
	// be retried —, gave_up — it is FAILED —, or disabled) and duration.
	DeliveryAttempted(destinationType, result string, took time.Duration)
}

type noMetrics struct{}

func (noMetrics) EventLogged(string, string, harkv1.SourceEventStatus) {}
func (noMetrics) DeliveryRejected(string)                              {}
func (noMetrics) Committed(int, time.Duration, error)                  {}
func (noMetrics) TriggerEvaluated(harkv1.ActionStatus)                 {}
func (noMetrics) RunStarted(bool)                                      {}
func (noMetrics) DeliveryAttempted(string, string, time.Duration)      {}
