package engine

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/harkhq/hark/engine/delivery"
	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// DefaultEnvironments exist from the first start, as in Knock.
var DefaultEnvironments = []*harkv1.Environment{
	{Slug: "development", Name: "Development"},
	{Slug: "production", Name: "Production"},
}

// SourceTypes tells the engine which source types are installed and what
// settings they take. The server wires it to the plugin host; the engine does
// not import the host.
type SourceTypes interface {
	// SourceType returns the installed type of that name, or false.
	SourceType(name string) (*harkv1.SourceType, bool)
	// SourceTypes lists the installed types, ordered by name.
	SourceTypes() []*harkv1.SourceType
}

// ListSourceTypes lists the installed source types with their health.
func (e *Engine) ListSourceTypes(context.Context) *harkv1.ListSourceTypesResponse {
	return &harkv1.ListSourceTypesResponse{SourceTypes: e.types.SourceTypes()}
}

// Config holds what an Engine needs.
type Config struct {
	// Store holds the state; the engine does not close it.
	Store Store
	// SourceTypes lists the installed source types.
	SourceTypes SourceTypes
	// PublicURL is the base of ingest URLs, e.g. "https://hark.example.com".
	PublicURL string
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// Translator turns deliveries into events (the plugin host). Without
	// one, deliveries are answered Unavailable.
	Translator Translator
	// EventRetention is how long logged events are kept; 0 means
	// DefaultEventRetention.
	EventRetention time.Duration
	// RunRetention is how long workflow runs are kept; 0 means
	// DefaultRunRetention.
	RunRetention time.Duration
	// Metrics receives counts and timings; nil discards them.
	Metrics Metrics
	// MaxUserProperties bounds a user's custom properties; 0 means
	// DefaultMaxUserProperties.
	MaxUserProperties int
	// MaxUserBytes bounds the encoded size of a user's properties; 0
	// means DefaultMaxUserBytes.
	MaxUserBytes int
	// DeliverySchedule is when delivery attempts are retried; nil means
	// delivery.DefaultSchedule (Standard Webhooks').
	DeliverySchedule delivery.Schedule
	// AllowPrivateDestinations lets destinations reach loopback, private
	// and link-local addresses (--allow-private-destinations).
	AllowPrivateDestinations bool
	// DeliveryTimeout bounds one delivery attempt; 0 means
	// delivery.DefaultTimeout (15 s).
	DeliveryTimeout time.Duration
	// DeliveryConcurrency bounds the attempts under way per destination; 0
	// means DefaultDeliveryConcurrency.
	DeliveryConcurrency int
	// SharedStore says that other nodes use Store too (cluster mode): the
	// dispatcher then leases each delivery before it sends it, so one
	// node sends it rather than every node's dispatcher (see outbox.go).
	SharedStore bool
	// DeliveryLease is how long a lease keeps a delivery from the other
	// nodes; 0 means DefaultDeliveryLease.
	DeliveryLease time.Duration
}

// Limits on users: every identify rewrites the whole record, so an
// unbounded one makes each identify of that user slower, in the one
// committer every source waits on. Segment profiles rarely hold more than
// a few dozen traits.
const (
	DefaultMaxUserProperties = 1000
	DefaultMaxUserBytes      = 64 << 10
)

// DefaultEventRetention is how long the event log keeps an event (Knock keeps
// source event logs for 30 days).
const DefaultEventRetention = 30 * 24 * time.Hour

// Engine implements hark's resources and rules on top of a Store.
type Engine struct {
	store          Store
	types          SourceTypes
	translator     Translator
	publicURL      string
	log            *slog.Logger
	now            func() time.Time
	eventRetention time.Duration
	runRetention   time.Duration
	metrics        Metrics

	maxUserProperties, maxUserBytes int

	outbox                   *outbox
	allowPrivateDestinations bool
	stopDispatch             context.CancelFunc

	lanesMu  sync.Mutex
	lanes    map[string]*lane // by source type, see laneFor
	lanesWG  sync.WaitGroup
	prepared chan []*pendingDelivery
	eventHub eventHub
	refusals refusalLog
	triggers triggerRegistry
	catalog  catalogCache
	runs     runSignal
	stop     chan struct{}
	wg       sync.WaitGroup

	// runMu serializes this node's transactions that write the runs feed
	// (the ingest committer, API triggers, cancellations). On one node the
	// feed's cursor counter makes concurrent ones conflict anyway; the
	// mutex makes them queue instead of exhausting their retries (nodes
	// of a shared store issue cursors from blocks of their own, and do not
	// conflict on it). Correctness never rests on it.
	runMu sync.Mutex

	// layoutMu serializes this node's transactions that add sources or
	// environments, so that on one node no source misses a configuration;
	// across nodes repairLayout closes the gaps (watch.go).
	layoutMu sync.Mutex

	// closeMu and closed keep Receive from queueing after Close.
	closeMu sync.RWMutex
	closed  bool

	// follower applies the store's changes to the state above (watch.go).
	follower follower

	// streamsEnd is closed by EndStreams: watch streams return, so a
	// graceful shutdown does not wait on them.
	streamsEnd     chan struct{}
	endStreamsOnce sync.Once
}

// New returns an Engine and makes sure the default environments exist, and
// that every source has a configuration in each of them. It starts the
// ingest committer (see runCommitter); lanes start with their first
// delivery. Close stops them.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.SourceTypes == nil {
		return nil, errors.New("engine: Store and SourceTypes are required")
	}
	e := &Engine{
		store:     cfg.Store,
		types:     cfg.SourceTypes,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		log:       cfg.Logger,
		now:       cfg.Now,

		translator:     cfg.Translator,
		eventRetention: cfg.EventRetention,
		prepared:       make(chan []*pendingDelivery, preparedQueue),
		stop:           make(chan struct{}),
		streamsEnd:     make(chan struct{}),
	}
	if e.eventRetention <= 0 {
		e.eventRetention = DefaultEventRetention
	}
	e.metrics = cfg.Metrics
	if e.metrics == nil {
		e.metrics = noMetrics{}
	}
	e.runRetention = cfg.RunRetention
	if e.runRetention <= 0 {
		e.runRetention = DefaultRunRetention
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.outbox = &outbox{
		client:      delivery.NewClient(delivery.Options{Timeout: cfg.DeliveryTimeout, AllowPrivate: cfg.AllowPrivateDestinations}),
		schedule:    cfg.DeliverySchedule,
		concurrency: cfg.DeliveryConcurrency,
		wake:        make(chan struct{}, 1),
		outcomes:    make(chan outcomeOf, recordBatch),
		known:       map[string]time.Time{},
		queues:      map[string]*destQueue{},
	}
	if e.outbox.schedule == nil {
		e.outbox.schedule = delivery.DefaultSchedule()
	}
	if e.outbox.concurrency <= 0 {
		e.outbox.concurrency = DefaultDeliveryConcurrency
	}
	if cfg.SharedStore {
		e.outbox.lease = cmp.Or(cfg.DeliveryLease, DefaultDeliveryLease)
	}
	e.allowPrivateDestinations = cfg.AllowPrivateDestinations
	e.maxUserProperties, e.maxUserBytes = cfg.MaxUserProperties, cfg.MaxUserBytes
	if e.maxUserProperties <= 0 {
		e.maxUserProperties = DefaultMaxUserProperties
	}
	if e.maxUserBytes <= 0 {
		e.maxUserBytes = DefaultMaxUserBytes
	}
	if e.now == nil {
		e.now = time.Now
	}
	// Follow the store before anything is read from it, so no change is
	// missed between a read and the watch.
	e.follow()
	ok := false
	defer func() {
		if !ok {
			e.follower.stop()
		}
	}()
	// A store that refuses writes (read-only while its disk is short) still
	// serves reads: start without the layout checks, which run again at the
	// next start.
	writable := true
	for _, env := range DefaultEnvironments {
		_, err := e.CreateEnvironment(ctx, &harkv1.CreateEnvironmentRequest{Slug: env.Slug, Name: env.Name})
		var exists *AlreadyExistsError
		switch {
		case err == nil || errors.As(err, &exists):
		case errors.Is(err, ErrUnavailable):
			writable = false
		default:
			return nil, fmt.Errorf("create default environment %s: %w", env.Slug, err)
		}
	}
	if writable {
		if err := e.completeLayout(ctx); err != nil {
			return nil, fmt.Errorf("complete source environments: %w", err)
		}
	} else {
		e.log.Warn("the store refuses writes: starting without checking the default environments and source layout")
	}
	e.follower.mu.Lock()
	err := e.loadTriggers(ctx)
	e.follower.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("load triggers: %w", err)
	}
	ok = true
	e.wg.Add(4)
	go e.repairLayout()
	go e.reloadAfterFailure()
	go e.runCommitter()
	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	e.stopDispatch = stopDispatch
	go e.runDispatcher(dispatchCtx)
	return e, nil
}

// EndStreams ends every watch stream. The server calls it when a graceful
// shutdown starts, since streams would otherwise hold it open.
func (e *Engine) EndStreams() {
	e.endStreamsOnce.Do(func() { close(e.streamsEnd) })
}

// Close stops the ingest stages after answering what is queued; deliveries
// arriving after it get Unavailable. Call it after the server stopped taking
// requests, before closing the store. Closing again does nothing.
func (e *Engine) Close() error {
	e.EndStreams()
	e.closeMu.Lock()
	again := e.closed
	e.closed = true
	e.closeMu.Unlock()
	if again {
		return nil
	}
	close(e.stop)
	// The lanes answer or prepare what is queued, then the committer
	// commits what they prepared.
	e.lanesWG.Wait()
	close(e.prepared)
	// Attempts under way are cut short; their deliveries stay due and are
	// sent again at the next start.
	e.stopDispatch()
	e.wg.Wait()
	e.follower.stop()
	e.outbox.client.Close()
	return nil
}

func (e *Engine) timestamp() *timestamppb.Timestamp { return timestamppb.New(e.now()) }

// newID returns a prefixed, URL-safe identifier: a lowercase ULID, so ids
// sort by creation time (lists come out in creation order) while carrying
// 80 random bits.
func newID(prefix string) string {
	return prefix + strings.ToLower(ulid.Make().String())
}

// IDTime returns when an id of newID was made (its ULID's time), or the
// zero time for "" or an id of another form.
func IDTime(id string) time.Time {
	i := strings.IndexByte(id, '_')
	u, err := ulid.ParseStrict(strings.ToUpper(id[i+1:]))
	if id == "" || err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time())
}

// newToken returns a secret ingest token: 256 random bits, base64url without
// padding (43 characters), well above the 128 bits DESIGN asks for.
func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// itself rather than return an error); keep the guard explicit.
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
