package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// runJSON is how a run appears in a webhook body: protojson as the REST API
// writes it (GET …/workflow-runs/{id}): lowerCamelCase, fields with their
// default value left out, so one parser serves both.
var runJSON = protojson.MarshalOptions{}

// webhookBody is the Standard Webhooks message shape: type, timestamp, data.
type webhookBody struct {
	Type      EventType       `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// pingData is a ping's data: which destination is being tested.
type pingData struct {
	DestinationID string `json:"destinationId"`
	Environment   string `json:"environment"`
}

// buildWebhook makes the one signed POST of a webhook delivery.
func buildWebhook(t Target, m Message, now time.Time) ([]outbound, error) {
	secrets := t.Secrets.Active(now)
	if len(secrets) == 0 {
		return nil, errors.New("webhook destination has no signing secret")
	}
	if t.URL == "" {
		return nil, errors.New("webhook destination has no url")
	}
	var data []byte
	var err error
	if m.EventType == EventPing {
		data, err = json.Marshal(pingData{DestinationID: t.ID, Environment: t.Environment})
	} else {
		data, err = marshalRun(m.Run)
	}
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(webhookBody{
		Type:      m.EventType,
		Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano),
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	sig, err := Sign(m.ID, now, body, secrets...)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 5)
	h.Set("Content-Type", "application/json")
	h.Set(HeaderID, m.ID)
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return []outbound{{url: t.URL, header: h, body: body}}, nil
}

// marshalRun writes a run for a receiver. Its deliveries are left out: they
// are hark's bookkeeping about this very message, and change after it is
// sent.
func marshalRun(run *harkv1.WorkflowRun) ([]byte, error) {
	if len(run.GetDeliveries()) > 0 {
		run = proto.CloneOf(run)
		run.Deliveries = nil
	}
	b, err := runJSON.Marshal(run)
	if err != nil {
		return nil, fmt.Errorf("encode run: %w", err)
	}
	return b, nil
}
