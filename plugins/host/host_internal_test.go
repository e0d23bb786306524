package host

import (
	"context"
	"log/slog"
	"testing"
)

// TestMarkDownOfOldGeneration reports a failure of a generation that has
// already been replaced, as a call made on the old process would long
// after: the current generation stays up and untouched.
func TestMarkDownOfOldGeneration(t *testing.T) {
	t.Parallel()
	h := &Host{log: slog.New(slog.DiscardHandler)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer h.cancel()
	m := newManaged(h, "t", BuiltIn, "", nil)
	gen := func() *generation {
		g := &generation{}
		g.ctx, g.down = context.WithCancelCause(context.Background())
		return g
	}
	old, cur := gen(), gen()
	m.up(old)
	m.markDown(old, "the process exited")
	m.up(cur)
	m.markDown(old, "a late failure of the old process")

	if in := m.info(); in.State != Up || !in.Healthy || in.Restarts != 1 || in.LastError != "" {
		t.Fatalf("after a stale failure: %+v, want up, 1 restart, no error", in)
	}
	if cur.ctx.Err() != nil {
		t.Fatalf("the current generation was ended: %v", context.Cause(cur.ctx))
	}
	if cause := context.Cause(old.ctx); cause == nil || cause.Error() != "the process exited" {
		t.Fatalf("the old generation ended with %v, want its first reason", cause)
	}

	m.markDown(cur, "no answer")
	if in := m.info(); in.State != Down || in.LastError != "no answer" {
		t.Fatalf("after the current generation failed: %+v, want down with its reason", in)
	}
	if cur.ctx.Err() == nil {
		t.Fatal("the current generation's calls were not ended")
	}
}
