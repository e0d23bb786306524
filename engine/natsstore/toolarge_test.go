package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/harkhq/hark/engine"
	"github.com/harkhq/hark/engine/kvstore"
	"github.com/harkhq/hark/engine/natsstore"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// noSourceTypes is an engine without source plugins: this test writes
// configuration only.
type noSourceTypes struct{}

func (noSourceTypes) SourceType(string) (*harkv1.SourceType, bool) { return nil, false }
func (noSourceTypes) SourceTypes() []*harkv1.SourceType            { return nil }

// TestApplyTooLargeForOneBatch: a configuration apply that writes more
// than one atomic batch holds (MaxBatch) is refused as a whole with
// engine.ErrTooLarge — which the API answers InvalidArgument, "send less
// at once" — and writes nothing.
func TestApplyTooLargeForOneBatch(t *testing.T) {
	store := kvstore.New(openDBs(t, 0)[0])
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{Store: store, SourceTypes: noSourceTypes{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	doc := &harkv1.ConfigDocument{ApiVersion: "hark/v1"}
	for i := range natsstore.MaxBatch + 100 {
		doc.Workflows = append(doc.Workflows, &harkv1.ConfigWorkflow{Key: fmt.Sprintf("wf-%04d", i)})
	}
	_, err = e.ApplyConfig(ctx, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc})
	if !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("apply of %d workflows: %v, want ErrTooLarge", len(doc.Workflows), err)
	}
	list, err := e.ListWorkflows(ctx, &harkv1.ListWorkflowsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetWorkflows()); n != 0 {
		t.Fatalf("the refused apply left %d workflows", n)
	}

	// Within the limit it commits.
	doc.Workflows = doc.Workflows[:200]
	if _, err := e.ApplyConfig(ctx, &harkv1.ApplyConfigRequest{Environment: "development", Document: doc}); err != nil {
		t.Fatalf("apply of 200 workflows: %v", err)
	}
}
