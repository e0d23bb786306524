package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// MaxLastSubjects is the most subjects one LastBySubjects call takes: nats-server answers a
// multi-subject direct get with at most 1024 messages (maxAllowedResponses) and refuses more
// with "413 Too Many Results".
const MaxLastSubjects = 1024

// Stored is a message as the stream holds it.
type Stored struct {
	Subject string
	// Seq is the message's stream sequence: the run feed's cursor, and what a guard expects.
	Seq  uint64
	Data []byte
	// Header is the message's headers.
	Header nats.Header
	// Time is when the stream stored the message.
	Time time.Time
}

// LastBySubjects reads the last message of each subject in one request (a multi-subject direct
// get; one round trip). Subjects without a message are absent from the map. At most
// MaxLastSubjects subjects.
//
// Direct gets are answered by a replica, preferably the one on the server the Conn is connected
// to, and an acknowledged commit is on a quorum, not yet on every replica: the answer can trail a
// commit acknowledged a moment ago, even one made on this Conn. That is enough for the engine's ledger read: the sequences it reads
// become the guards of its commit, and a stale read makes that commit fail with a
// *ConflictError instead of writing twice.
func (c *Conn) LastBySubjects(ctx context.Context, stream string, subjects []string) (map[string]Stored, error) {
	if len(subjects) == 0 {
		return map[string]Stored{}, nil
	}
	if len(subjects) > MaxLastSubjects {
		return nil, fmt.Errorf("read last messages of %s: %d subjects, at most %d per request", stream, len(subjects), MaxLastSubjects)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, c.js, stream, subjects)
	if err != nil {
		return nil, fmt.Errorf("read last messages of %s: %w", stream, err)
	}
	out := make(map[string]Stored, len(subjects))
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break // none of the subjects has a message
		}
		if err != nil {
			return nil, fmt.Errorf("read last messages of %s: %w", stream, err)
		}
		out[m.Subject] = stored(m)
	}
	return out, nil
}

// Last reads the last message of one subject; ok is false when the subject has none.
func (c *Conn) Last(ctx context.Context, stream, subject string) (s Stored, ok bool, err error) {
	m, err := c.LastBySubjects(ctx, stream, []string{subject})
	if err != nil {
		return Stored{}, false, err
	}
	s, ok = m[subject]
	return s, ok, nil
}

// Read returns up to max messages of the stream from sequence from on (the run feed reads from
// its cursor plus one), in sequence order, in one request; subject, when not empty, filters them
// (wildcards allowed). Fewer than max messages means the stream had no more at that moment. Like
// LastBySubjects it may be answered by a replica that trails the leader.
func (c *Conn) Read(ctx context.Context, stream string, from uint64, max int, subject string) ([]Stored, error) {
	if from == 0 {
		from = 1
	}
	opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSeq(from)}
	if subject != "" {
		opts = append(opts, jetstreamext.GetBatchSubject(subject))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	msgs, err := jetstreamext.GetBatch(ctx, c.js, stream, max, opts...)
	if err != nil {
		return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
	}
	var out []Stored
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
		}
		out = append(out, stored(m))
	}
	return out, nil
}

func stored(m *jetstream.RawStreamMsg) Stored {
	return Stored{Subject: m.Subject, Seq: m.Sequence, Data: m.Data, Header: m.Header, Time: m.Time}
}

// leaderLast reads the last message of one subject from the stream's
// leader (the JetStream API's message get, not a direct get), so it sees
// every commit acknowledged before it: read-your-writes. found is false
// when the subject has no message.
func (c *Conn) leaderLast(ctx context.Context, stream, subject string) (s Stored, found bool, err error) {
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return Stored{}, false, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return Stored{}, false, err
	}
	var answer struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return Stored{}, false, fmt.Errorf("read %s: answer %q: %w", subject, resp.Data, err)
	}
	switch {
	case answer.Error != nil && answer.Error.ErrorCode == errCodeNoMessageFound:
		return Stored{}, false, nil
	case answer.Error != nil:
		return Stored{}, false, answer.Error
	case answer.Message == nil:
		return Stored{}, false, fmt.Errorf("read %s: answer %q has no message", subject, resp.Data)
	}
	m := answer.Message
	s = Stored{Subject: m.Subject, Seq: m.Seq, Data: m.Data, Time: m.Time}
	if len(m.Header) > 0 {
		h, err := decodeHeader(m.Header)
		if err != nil {
			return Stored{}, false, fmt.Errorf("read %s: headers: %w", subject, err)
		}
		s.Header = h
	}
	return s, true, nil
}

// decodeHeader parses a message's headers as JetStream stores them
// ("NATS/1.0\r\nKey: value\r\n…\r\n\r\n").
func decodeHeader(b []byte) (nats.Header, error) {
	lines := strings.Split(string(b), "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NATS/1.0") {
		return nil, fmt.Errorf("not a NATS header block: %q", b)
	}
	h := nats.Header{}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("header line %q", line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}
