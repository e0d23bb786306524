package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
)

// ErrPingUnsupported is the attempt error of a TestDestination on a type
// whose API has no call without side effects: a Knock ping would have to
// trigger a workflow, a Segment one would write a track.
var ErrPingUnsupported = errors.New("ping is only sent to webhook destinations")

// knockTrigger is the body of Knock's POST /v1/workflows/{key}/trigger, in
// Knock's snake_case. hark's runs carry user ids, so recipients and actor
// are ids of users Knock knows (hark's inline identify happened in hark).
type knockTrigger struct {
	Recipients      []string        `json:"recipients"`
	Actor           string          `json:"actor,omitempty"`
	Tenant          string          `json:"tenant,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	CancellationKey string          `json:"cancellation_key,omitempty"`
}

// knockCancel is the body of Knock's POST /v1/workflows/{key}/cancel.
// Recipients scope the cancellation to the recipients this change cancelled
// hark's run for (all of the run's for a whole cancellation): Knock's
// workflow stops for them and goes on for the others, as hark's run does.
type knockCancel struct {
	CancellationKey string   `json:"cancellation_key"`
	Recipients      []string `json:"recipients,omitempty"`
}

// buildKnock makes the trigger or cancel call of a knock delivery.
func buildKnock(t Target, m Message) ([]outbound, error) {
	if m.EventType == EventPing {
		return nil, ErrPingUnsupported
	}
	apiKey := strings.TrimSpace(t.Settings[SettingKnockAPIKey])
	if apiKey == "" {
		return nil, fmt.Errorf("knock destination has no settings.%s", SettingKnockAPIKey)
	}
	run := m.Run
	if run.GetWorkflowKey() == "" {
		return nil, errors.New("run has no workflow key")
	}
	base := apiURL(t.URL, DefaultKnockURL, "/v1/workflows/"+url.PathEscape(run.GetWorkflowKey()))
	h := make(http.Header, 4)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("Authorization", "Bearer "+apiKey)

	var body []byte
	var err error
	var endpoint string
	switch m.EventType {
	case EventRunCreated:
		if len(run.GetRecipients()) == 0 {
			return nil, errors.New("run has no recipients")
		}
		trigger := knockTrigger{
			Recipients:      run.GetRecipients(),
			Actor:           run.GetActor(),
			Tenant:          run.GetTenant(),
			CancellationKey: run.GetCancellationKey(),
		}
		if run.GetData() != nil {
			if trigger.Data, err = protojson.Marshal(run.GetData()); err != nil {
				return nil, fmt.Errorf("encode run data: %w", err)
			}
		}
		body, err = json.Marshal(trigger)
		endpoint = base + "/trigger"
		// Knock deduplicates triggers by this key, so a retried attempt whose
		// first answer was lost does not start the workflow twice.
		h.Set("Idempotency-Key", run.GetId())
	case EventRunCancelled:
		if run.GetCancellationKey() == "" {
			return nil, errors.New("cancelled run has no cancellation key, so Knock cannot cancel it")
		}
		body, err = json.Marshal(knockCancel{CancellationKey: run.GetCancellationKey(), Recipients: CancelledRecipients(run)})
		endpoint = base + "/cancel"
	}
	if err != nil {
		return nil, fmt.Errorf("encode knock body: %w", err)
	}
	return []outbound{{url: endpoint, header: h, body: body}}, nil
}
