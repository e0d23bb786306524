package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// corpusDir is the shared Segment corpus: ../shared/corpus/segment from the
// repository root, i.e. ../../shared/corpus/segment from this package. The
// files are read in place, never copied into the repository.
var corpusDir = filepath.Join("..", "..", "shared", "corpus", "segment")

// corpusEvent is what one event of a corpus file must become in the log.
type corpusEvent struct {
	typ, name, userID string
	status            harkv1.SourceEventStatus
}

func track(name, user string) corpusEvent {
	return corpusEvent{"track", name, user, statusProcessed}
}

func other(typ, user string) corpusEvent {
	return corpusEvent{typ, "", user, statusProcessed}
}

func skipped(typ, user string) corpusEvent {
	return corpusEvent{typ, "", user, statusSkipped}
}

func repeatEvent(ev corpusEvent, n int) []corpusEvent {
	out := make([]corpusEvent, n)
	for i := range out {
		out[i] = ev
	}
	return out
}

// corpusExpected maps each valid corpus file, by its number, to its events in
// order (see the corpus's SOURCES.md for what each file covers).
var corpusExpected = map[string][]corpusEvent{
	"01": {track("Course Clicked", "AiUGstSDIg")},
	"02": {track("Order Completed", "019mr8mf4r")}, // legacy "action"
	"03": {other("identify", "97980cfea0067")},
	"04": {{"page", "Home", "97980cfea0067", statusProcessed}},
	"05": {{"screen", "Home", "97980cfea0067", statusProcessed}},
	"06": {other("group", "97980cfea0067")},
	"07": {other("alias", "507f191e81")},
	"08": {track("Report Submitted", "97980cfea0067")},
	"09": {
		other("identify", "019mr8mf4r"), track("Song Played", "019mr8mf4r"),
		other("identify", "971mj8mk7p"), track("Song Played", "971mj8mk7p"),
	},
	"10": repeatEvent(track("Download", "123456"), 3),
	"11": {track("Email Open", "")}, // anonymousId only
	"12": {other("identify", "Test User ID Y")},
	"13": {track("Referral Event", "data-test-site")},
	"14": repeatEvent(track("Push___Received", "userId"), 12),
	"15": {track("Content Started", "nhi")},
	"16": {other("delete", "019mr8mf4r")},
	"17": {track("Purchased an Item", "019mr8mf4r")},
	"18": {other("identify", "test-user-t0zpx")},
	"19": {other("delete", "5678")},
	"20": {skipped("", ""), skipped("", "")}, // partial events without a type
}

// corpusFiles returns the corpus's *.json files in dir by number, skipping
// the test when the corpus is not there.
func corpusFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	abs, _ := filepath.Abs(dir)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Segment corpus not found: looked for %s (../shared/corpus/segment relative to the repository root): %v", abs, err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("Segment corpus at %s holds no *.json files", abs)
	}
	files := map[string]string{}
	for _, p := range paths {
		num, _, _ := strings.Cut(filepath.Base(p), "-")
		files[num] = p
	}
	return files
}

// TestSegmentCorpus posts every valid file of the shared Segment corpus to a
// development ingest URL over REST, each to a source of its own, and checks
// the answer and the event log against corpusExpected.
func TestSegmentCorpus(t *testing.T) {
	t.Parallel()
	files := corpusFiles(t, corpusDir)
	for num := range files {
		if _, ok := corpusExpected[num]; !ok {
			t.Errorf("corpus file %s has no expectation in corpusExpected; add one", files[num])
		}
	}
	for num := range corpusExpected {
		if _, ok := files[num]; !ok {
			t.Errorf("corpusExpected names file %s-…json, which is not in %s", num, corpusDir)
		}
	}
	h := startServer(t)

	nums := make([]string, 0, len(files))
	for num := range files {
		nums = append(nums, num)
	}
	sort.Strings(nums)
	// "files" returns once every parallel file subtest has finished.
	t.Run("files", func(t *testing.T) {
		for _, num := range nums {
			path, want := files[num], corpusExpected[num]
			if want == nil {
				continue
			}
			t.Run(filepath.Base(path), func(t *testing.T) {
				t.Parallel()
				body, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				src := h.createSource(t, "corpus "+num)
				res := h.mustDeliver(t, devURL(t, src), body, len(want))

				logged := h.sourceEvents(t, "development", src.GetId())
				if len(logged) != len(want) {
					t.Fatalf("event log has %d events, want %d", len(logged), len(want))
				}
				if !slices.IsSortedFunc(logged, func(a, b *harkv1.SourceEvent) int { return strings.Compare(b.GetId(), a.GetId()) }) {
					t.Errorf("event log is not newest first: %q", eventIDs(logged))
				}
				byID := map[string]*harkv1.SourceEvent{}
				for _, ev := range logged {
					byID[ev.GetId()] = ev
				}
				for i, w := range want {
					got := res.GetEvents()[i]
					if got.GetId() == "" || got.GetStatus() != w.status {
						t.Errorf("response event %d = %v, want stored with status %v", i, got, w.status)
						continue
					}
					ev := byID[got.GetId()]
					if ev == nil {
						t.Errorf("response event %d (%s) is not in the event log", i, got.GetId())
						continue
					}
					if ev.GetType() != w.typ || ev.GetName() != w.name || ev.GetUserId() != w.userID || ev.GetStatus() != w.status {
						t.Errorf("logged event %d = type %q name %q userId %q status %v; want %q %q %q %v",
							i, ev.GetType(), ev.GetName(), ev.GetUserId(), ev.GetStatus(), w.typ, w.name, w.userID, w.status)
					}
					if ev.GetSourceId() != src.GetId() || ev.GetEnvironment() != "development" || ev.GetReceivedAt() == nil {
						t.Errorf("logged event %d has source %q environment %q receivedAt %v", i, ev.GetSourceId(), ev.GetEnvironment(), ev.GetReceivedAt())
					}
					if len(ev.GetEvent().GetFields()) == 0 {
						t.Errorf("logged event %d has no original event", i)
					}
				}
				checkCorpusDetails(t, num, res, byID)
			})
		}
	})

	// Everything went to development: production's log stays empty.
	if evs := h.listEvents(t, "production", nil); len(evs) != 0 {
		t.Fatalf("production has %d events, want none", len(evs))
	}
	total := 0
	for _, want := range corpusExpected {
		total += len(want)
	}
	if evs := h.listEvents(t, "development", nil); !t.Failed() && len(evs) != total {
		t.Fatalf("development has %d events, want %d", len(evs), total)
	}
}

// checkCorpusDetails checks what individual files are in the corpus for.
func checkCorpusDetails(t *testing.T, num string, res *harkv1.ReceiveResponse, byID map[string]*harkv1.SourceEvent) {
	t.Helper()
	ev := func(i int) *harkv1.SourceEvent { return byID[res.GetEvents()[i].GetId()] }
	switch num {
	case "02":
		// Nested properties arrive as data.
		products := field(ev(0).GetData(), "products").GetListValue().GetValues()
		if len(products) != 2 || field(products[0].GetStructValue(), "name").GetStringValue() != "Monopoly: 3rd Edition" {
			t.Errorf("data.products = %v, want the two products", products)
		}
	case "03":
		if got := field(ev(0).GetTraits(), "address", "city").GetStringValue(); got != "San Francisco" {
			t.Errorf("traits.address.city = %q, want San Francisco", got)
		}
	case "09":
		// The batch-level context is merged into every event.
		for i := range 4 {
			if got := field(ev(i).GetEvent(), "context", "device", "name").GetStringValue(); got != "Apple iPhone 6" {
				t.Errorf("event %d: context.device.name = %q, want the batch context's Apple iPhone 6", i, got)
			}
		}
	case "10":
		for i := range 3 {
			if got := field(ev(i).GetEvent(), "context", "library", "name").GetStringValue(); got != "analytics-go" {
				t.Errorf("event %d: context.library.name = %q, want the batch context's analytics-go", i, got)
			}
			if got := field(ev(i).GetData(), "version").GetNumberValue(); got != float64(i) {
				t.Errorf("event %d: data.version = %v, want %d", i, got, i)
			}
		}
	case "11":
		if got := ev(0).GetAnonymousId(); got != "c1da3de8-b4b7-4cf2-b496-6a271890ff40" {
			t.Errorf("anonymousId = %q, want c1da3de8-b4b7-4cf2-b496-6a271890ff40", got)
		}
	case "16", "19":
		// A delete is the user's deletion request (DESIGN §9): with
		// identify (and so delete) handling off it is logged with a
		// skipped DELETE_USER action saying why.
		acts := ev(0).GetActions()
		if len(acts) != 1 || acts[0].GetType() != harkv1.ActionType_ACTION_TYPE_DELETE_USER ||
			acts[0].GetStatus() != harkv1.ActionStatus_ACTION_STATUS_SKIPPED || acts[0].GetReason() != "delete handling is off" {
			t.Errorf("delete actions = %v, want one skipped DELETE_USER (delete handling is off)", acts)
		}
	case "20":
		if got := field(ev(0).GetEvent(), "traits", "2").GetStringValue(); got != "Müller" {
			t.Errorf("event.traits.2 = %q, want Müller", got)
		}
		if got := field(ev(1).GetEvent(), "traits", "2").GetStringValue(); got != "Mills" {
			t.Errorf("second event.traits.2 = %q, want Mills", got)
		}
	}
}

// TestSegmentCorpusInvalid posts the corpus's invalid files: each is a 400
// and nothing is stored.
func TestSegmentCorpusInvalid(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(corpusDir, "invalid")
	files := corpusFiles(t, dir)
	if len(files) != 2 {
		t.Errorf("%s holds %d files, want the 2 this test was written for", dir, len(files))
	}
	h := startServer(t)
	src := h.createSource(t, "corpus invalid")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			before := len(h.listEvents(t, "development", nil))
			r, _ := h.deliver(t, devURL(t, src), body)
			wantStatus(t, r, http.StatusBadRequest)
			if after := len(h.listEvents(t, "development", nil)); after != before {
				t.Fatalf("event count went from %d to %d after a 400", before, after)
			}
		})
	}
	if evs := h.listEvents(t, "development", nil); len(evs) != 0 {
		t.Fatalf("development has %d events after only invalid deliveries, want none", len(evs))
	}
	r := h.rest(t, http.MethodGet, "/v1/environments/development/sources/"+src.GetId()+"/event-types", "")
	wantStatus(t, r, http.StatusOK)
	if ets := decode(t, r, &harkv1.ListEventTypesResponse{}).GetEventTypes(); len(ets) != 0 {
		t.Fatalf("event types after only invalid deliveries = %v, want none", ets)
	}
}

// TestSegmentCorpusDuplicateMessageIDs posts the analytics-go fixture, whose
// three events share the messageId "I'm unique", to a source with
// idempotency on: exactly one is processed (DESIGN §4: the same key twice in
// one batch executes once).
func TestSegmentCorpusDuplicateMessageIDs(t *testing.T) {
	t.Parallel()
	files := corpusFiles(t, corpusDir)
	path, ok := files["10"]
	if !ok {
		t.Skipf("corpus file 10-… is not in %s", corpusDir)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := startServer(t)
	src := h.createSource(t, "corpus idempotent")
	h.patchSourceEnv(t, src.GetId(), "development", `{"idempotencyEnabled":true}`)

	res := h.mustDeliver(t, devURL(t, src), body, 3)
	var statuses []harkv1.SourceEventStatus
	for _, ev := range res.GetEvents() {
		statuses = append(statuses, ev.GetStatus())
	}
	want := []harkv1.SourceEventStatus{statusProcessed, statusIdempotent, statusIdempotent}
	if !slices.Equal(statuses, want) {
		t.Fatalf("statuses = %v, want %v", statuses, want)
	}
	first := res.GetEvents()[0].GetId()
	for _, re := range res.GetEvents()[1:] {
		ev := h.getEvent(t, "development", re.GetId())
		if ev.GetOriginalEventId() != first || ev.GetStatus() != statusIdempotent || len(ev.GetActions()) != 0 {
			t.Errorf("duplicate %s = status %v original %q actions %v; want IDEMPOTENT, original %s, no actions",
				re.GetId(), ev.GetStatus(), ev.GetOriginalEventId(), ev.GetActions(), first)
		}
		if ev.GetIdempotencyKey() != "I'm unique" {
			t.Errorf("duplicate %s idempotencyKey = %q, want \"I'm unique\"", re.GetId(), ev.GetIdempotencyKey())
		}
	}
	if got := h.getEvent(t, "development", first).GetIdempotencyKey(); got != "I'm unique" {
		t.Errorf("processed event idempotencyKey = %q, want \"I'm unique\"", got)
	}
}
