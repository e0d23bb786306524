package host_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/harkhq/hark/plugins/host"
	"github.com/harkhq/hark/plugins/sdk"
)

const (
	streamMethod = "/hark.plugin.v1.SourcePluginService/TranslateStream"
	unaryMethod  = "/hark.plugin.v1.SourcePluginService/Translate"
)

// how asks the test plugin by which method and over which server stream a
// batch came.
func how(t *testing.T, h *host.Host, typ string) (method, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	defer cancel()
	res, err := h.Translate(ctx, typ, []sdk.Delivery{delivery("how")})
	if err != nil {
		t.Fatalf("Translate(%s): %v", typ, err)
	}
	if len(res) != 1 || len(res[0].Events) != 1 {
		t.Fatalf("Translate(%s) = %+v, want one event", typ, res)
	}
	return res[0].Events[0].Name, res[0].Events[0].UserID
}

// TestTranslateOverOneStream calls a plugin of this SDK one call after
// another and side by side: every batch goes over one TranslateStream.
func TestTranslateOverOneStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{}, "streamed")
	method, first := how(t, h, "streamed")
	if method != streamMethod {
		t.Fatalf("a batch reached the plugin by %s, want %s", method, streamMethod)
	}
	var wg sync.WaitGroup
	streams := make(chan string, 20)
	for range 20 {
		wg.Go(func() {
			method, stream := how(t, h, "streamed")
			if method != streamMethod {
				t.Errorf("a batch in parallel reached the plugin by %s, want %s", method, streamMethod)
			}
			streams <- stream
		})
	}
	wg.Wait()
	close(streams)
	for s := range streams {
		if s != first {
			t.Fatalf("batches came over streams %s and %s, want one", first, s)
		}
	}
	if in := info(t, h, "streamed"); !in.Stream || in.Description.ProtocolMinor != sdk.ProtocolMinor {
		t.Fatalf("the plugin is %+v, want streaming with protocol minor %d", in, sdk.ProtocolMinor)
	}
}

// TestUnaryOnly makes calls of their own to a plugin that serves the
// stream, as Config.UnaryOnly asks.
func TestUnaryOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{UnaryOnly: true}, "unary")
	if method, _ := how(t, h, "unary"); method != unaryMethod {
		t.Fatalf("a batch reached the plugin by %s, want %s", method, unaryMethod)
	}
	if in := info(t, h, "unary"); in.Stream {
		t.Fatalf("the plugin is %+v, want no stream", in)
	}
}

// TestOldPluginGetsUnaryCalls runs a plugin of protocol 1.0, which has no
// TranslateStream: the host calls its Translate, once per batch.
func TestOldPluginGetsUnaryCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.bin = oldPlugin
	h := f.start(t, host.Config{}, "old")
	if in := info(t, h, "old"); !in.Healthy || in.Stream || in.Description.ProtocolMinor != 0 {
		t.Fatalf("the old plugin is %+v, want up without a stream, protocol minor 0", in)
	}
	for range 3 {
		if method, _ := how(t, h, "old"); method != unaryMethod {
			t.Fatalf("a batch reached the old plugin by %s, want %s", method, unaryMethod)
		}
	}
}

// TestPluginClaimingStreamWithoutIt runs a plugin that says it speaks 1.1
// but serves no TranslateStream: the host finds out when it opens the
// stream, and calls Translate instead, without restarting the plugin.
func TestPluginClaimingStreamWithoutIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.bin, f.env = oldPlugin, []string{"HARK_OLDPLUGIN_MINOR=1"}
	h := f.start(t, host.Config{}, "claims")
	for range 3 {
		if method, _ := how(t, h, "claims"); method != unaryMethod {
			t.Fatalf("a batch reached the plugin by %s, want %s", method, unaryMethod)
		}
	}
	if in := info(t, h, "claims"); !in.Healthy || in.Stream || in.Restarts != 0 || in.Description.ProtocolMinor != 1 {
		t.Fatalf("the plugin is %+v, want up without a stream, minor 1, never restarted", in)
	}
}

// TestFrozenOldPluginAnswersUnavailable freezes a plugin of protocol 1.0:
// the unary path keeps the host's guarantees too.
func TestFrozenOldPluginAnswersUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.bin = oldPlugin
	h := f.start(t, host.Config{}, "oldfrozen")
	how(t, h, "oldfrozen")
	old := f.onePID(t, "oldfrozen")
	freeze(t, old)
	began := time.Now()
	wantUnavailable(t, "a call to the frozen old plugin", goTranslate(h, "oldfrozen", ""))
	t.Logf("SIGSTOP to ErrUnavailable: %v", time.Since(began))
	waitUntil(t, "the frozen process to be killed", func() bool { return gone(old) })
	waitUntil(t, "a new process to serve", func() bool { return info(t, h, "oldfrozen").Healthy })
	how(t, h, "oldfrozen")
}

// TestStreamedCallsEndWhenPluginCrashes crashes a plugin while batches are
// in flight on its stream: each fails with ErrUnavailable, as a failed call
// does, and the replacement serves over a stream of its own.
func TestStreamedCallsEndWhenPluginCrashes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.start(t, host.Config{CallTimeout: time.Minute}, "breaks")
	how(t, h, "breaks")
	hung := []<-chan error{goTranslate(h, "breaks", "hang"), goTranslate(h, "breaks", "hang")}
	time.Sleep(100 * time.Millisecond) // both batches are in flight
	pid := f.onePID(t, "breaks")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, c := range hung {
		wantUnavailable(t, "a batch in flight when the plugin died", c)
	}
	waitUntil(t, "the replacement to serve", func() bool { return info(t, h, "breaks").Healthy })
	if method, _ := how(t, h, "breaks"); method != streamMethod {
		t.Fatalf("after the crash a batch came by %s, want %s", method, streamMethod)
	}
}
