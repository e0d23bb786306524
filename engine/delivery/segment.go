package delivery

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
)

// Segment's HTTP tracking API limits on /v1/batch: 500 KB per request and
// 2,500 events; a request over them is refused whole. The byte budget
// leaves room for the envelope and for "KB" meaning 1,000.
const (
	segmentMaxBatchBytes  = 480_000
	segmentMaxBatchEvents = 2500
)

// Segment event names of the two run changes.
const (
	SegmentEventRunCreated   = "Workflow Run Created"
	SegmentEventRunCancelled = "Workflow Run Cancelled"
)

// segmentTrack is one track call of a batch.
type segmentTrack struct {
	Type       string          `json:"type"`
	Event      string          `json:"event"`
	UserID     string          `json:"userId"`
	MessageID  string          `json:"messageId"`
	Timestamp  string          `json:"timestamp"`
	Properties segmentProps    `json:"properties"`
	Context    json.RawMessage `json:"context"`
}

// segmentProps are a track's properties, in the snake_case of Segment's
// own spec properties. Every key is always there, empty or null when the
// run has no value, so destinations downstream see one shape.
type segmentProps struct {
	WorkflowKey     string          `json:"workflow_key"`
	WorkflowRunID   string          `json:"workflow_run_id"`
	TriggerID       string          `json:"trigger_id"`
	SourceEventID   string          `json:"source_event_id"`
	Environment     string          `json:"environment"`
	Tenant          string          `json:"tenant"`
	Actor           string          `json:"actor"`
	CancellationKey string          `json:"cancellation_key"`
	Data            json.RawMessage `json:"data"`
}

// segmentContext names hark as the library that sent the calls, as
// Segment's own libraries do.
var segmentContext = json.RawMessage(`{"library":{"name":"hark"}}`)

// segmentMessageID is stable per delivery and recipient, so Segment drops
// the tracks a retried attempt sends again. A hash keeps it short whatever
// the ids are.
func segmentMessageID(deliveryID, recipient string) string {
	sum := sha256.Sum256([]byte(deliveryID + "\x00" + recipient))
	return "hark-" + hex.EncodeToString(sum[:16])
}

// buildSegment makes the batch requests of a segment delivery: one track
// per recipient, split to stay under Segment's batch limits.
func buildSegment(t Target, m Message, now time.Time) ([]outbound, error) {
	if m.EventType == EventPing {
		return nil, ErrPingUnsupported
	}
	writeKey := strings.TrimSpace(t.Settings[SettingSegmentWriteKey])
	if writeKey == "" {
		return nil, fmt.Errorf("segment destination has no settings.%s", SettingSegmentWriteKey)
	}
	run := m.Run
	if len(run.GetRecipients()) == 0 {
		return nil, errors.New("run has no recipients")
	}
	event := SegmentEventRunCreated
	if m.EventType == EventRunCancelled {
		event = SegmentEventRunCancelled
	}
	data := json.RawMessage("null")
	if run.GetData() != nil {
		b, err := protojson.Marshal(run.GetData())
		if err != nil {
			return nil, fmt.Errorf("encode run data: %w", err)
		}
		data = b
	}
	props := segmentProps{
		WorkflowKey:     run.GetWorkflowKey(),
		WorkflowRunID:   run.GetId(),
		TriggerID:       run.GetTriggerId(),
		SourceEventID:   run.GetSourceEventId(),
		Environment:     run.GetEnvironment(),
		Tenant:          run.GetTenant(),
		Actor:           run.GetActor(),
		CancellationKey: run.GetCancellationKey(),
		Data:            data,
	}
	timestamp := m.Timestamp.UTC().Format(time.RFC3339Nano)
	sentAt := now.UTC().Format(time.RFC3339Nano)
	endpoint := apiURL(t.URL, DefaultSegmentURL, "/v1/batch")
	// Basic auth with the write key as the user and an empty password, as
	// Segment's HTTP API documents it.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))

	var out []outbound
	var batch [][]byte
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		var body bytes.Buffer
		body.Grow(size + 64)
		body.WriteString(`{"batch":[`)
		body.Write(bytes.Join(batch, []byte{','}))
		body.WriteString(`],"sentAt":`)
		ts, _ := json.Marshal(sentAt) // a string always encodes
		body.Write(ts)
		body.WriteByte('}')
		h := make(http.Header, 2)
		h.Set("Content-Type", "application/json")
		h.Set("Authorization", auth)
		out = append(out, outbound{url: endpoint, header: h, body: body.Bytes()})
		batch, size = nil, 0
	}
	recipients := run.GetRecipients()
	if m.EventType == EventRunCancelled {
		recipients = CancelledRecipients(run)
	}
	for _, recipient := range recipients {
		track, err := json.Marshal(segmentTrack{
			Type:       "track",
			Event:      event,
			UserID:     recipient,
			MessageID:  segmentMessageID(m.ID, recipient),
			Timestamp:  timestamp,
			Properties: props,
			Context:    segmentContext,
		})
		if err != nil {
			return nil, fmt.Errorf("encode segment track: %w", err)
		}
		if len(batch) > 0 && (size+len(track)+1 > segmentMaxBatchBytes || len(batch) == segmentMaxBatchEvents) {
			flush()
		}
		batch = append(batch, track)
		size += len(track) + 1
	}
	flush()
	return out, nil
}
