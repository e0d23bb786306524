package storetest

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/harkhq/hark/engine"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// scan is one newest-first scan, reduced to record ids.
type scan struct {
	name string
	put  func(tx engine.Tx, env, id string) error
	list func(tx engine.Tx, env, before string, limit, scanLimit int) (ids []string, lastScanned string, err error)
}

func scanIDs[M interface{ GetId() string }](page []M, last string, err error) ([]string, string, error) {
	if err != nil {
		return nil, "", err
	}
	ids := make([]string, len(page))
	for i, m := range page {
		ids[i] = m.GetId()
	}
	return ids, last, nil
}

func scans() []scan {
	return []scan{
		{"SourceEvents",
			func(tx engine.Tx, env, id string) error {
				meta, err := proto.Marshal(&harkv1.SourceEvent{Id: id, Environment: env, Type: "track"})
				if err != nil {
					return err
				}
				return tx.PutSourceEvent(env, id, meta, engine.EventJSON{Event: []byte(`{"n":1}`)}, farFuture())
			},
			func(tx engine.Tx, env, before string, limit, scanLimit int) ([]string, string, error) {
				return scanIDs(sourceEvents(tx, env, before, limit, scanLimit))
			}},
		{"WorkflowRuns",
			func(tx engine.Tx, env, id string) error {
				return tx.PutWorkflowRun(&harkv1.WorkflowRun{Environment: env, Id: id, WorkflowKey: "wf"}, farFuture())
			},
			func(tx engine.Tx, env, before string, limit, scanLimit int) ([]string, string, error) {
				return scanIDs(workflowRuns(tx, env, before, limit, scanLimit))
			}},
		{"Deliveries",
			func(tx engine.Tx, env, id string) error {
				d := &harkv1.Delivery{Environment: env, Id: id, DestinationId: "dst", Status: harkv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED}
				return tx.PutDelivery(d, &harkv1.WorkflowRun{Environment: env, Id: "run_" + id}, farFuture())
			},
			func(tx engine.Tx, env, before string, limit, scanLimit int) ([]string, string, error) {
				return scanIDs(deliveries(tx, env, before, limit, scanLimit))
			}},
	}
}

// testNewestFirstScans: the event log, the runs and the deliveries are
// listed newest first (ids are time-ordered, so the greatest id first),
// resume below `before`, honour limit, and read at most scanLimit records,
// naming the last one read when that limit cut the walk short.
func testNewestFirstScans(t *testing.T, open opener) {
	// Seven ids, fixed width so byte order is time order; neighbouring
	// environments hold ids that would interleave.
	var oldestFirst []string
	for i := range 7 {
		oldestFirst = append(oldestFirst, fmt.Sprintf("x_%02d", i+1))
	}
	newest := slices.Clone(oldestFirst)
	slices.Reverse(newest)
	for _, sc := range scans() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			update(t, s, func(tx engine.Tx) error {
				for _, id := range shuffled(oldestFirst) {
					if err := sc.put(tx, listEnv, id); err != nil {
						return err
					}
					for _, env := range neighborEnvs {
						if err := sc.put(tx, env, id+"n"); err != nil {
							return err
						}
					}
				}
				return nil
			})
			view(t, s, func(tx engine.Tx) error {
				type call struct {
					before           string
					limit, scanLimit int
					want             []string
					wantLast         string
				}
				for _, c := range []call{
					{"", 100, 100, newest, ""},
					{"", 2, 100, newest[:2], ""},
					{"", 2, 5, newest[:2], ""}, // cut by limit, not by the scan
					{newest[0], 100, 100, newest[1:], ""},
					{newest[3], 2, 100, newest[4:6], ""},
					{newest[5], 100, 100, newest[6:], ""},
					{newest[6], 100, 100, nil, ""},
					{"", 100, 3, newest[:3], newest[2]},
					{newest[2], 100, 3, newest[3:6], newest[5]},
					{newest[5], 100, 3, newest[6:], ""},
				} {
					got, last, err := sc.list(tx, listEnv, c.before, c.limit, c.scanLimit)
					if err != nil {
						return err
					}
					if !slices.Equal(got, c.want) || last != c.wantLast {
						t.Errorf("before %q, limit %d, scan limit %d: %q (last scanned %q), want %q (last scanned %q)",
							c.before, c.limit, c.scanLimit, got, last, c.want, c.wantLast)
					}
				}
				// Paging by 3, each page below the last one's oldest.
				var paged []string
				before := ""
				for range len(newest) + 1 {
					page, _, err := sc.list(tx, listEnv, before, 3, 100)
					if err != nil {
						return err
					}
					if len(page) == 0 {
						break
					}
					paged = append(paged, page...)
					before = page[len(page)-1]
				}
				if !slices.Equal(paged, newest) {
					t.Errorf("paging by 3 listed %q, want %q", paged, newest)
				}
				return nil
			})
		})
	}
}
