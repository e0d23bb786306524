package server_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/harkhq/hark/server"
)

// h2Attacker is a raw HTTP/2 (h2c) client that opens many streams, sends a
// large body on each as fast as hark's flow control lets it, and advertises
// a zero window itself, so no answer can ever be written back to it: the
// attack that used to pin every body in memory (1 connection × 250 streams
// held 270 MiB; 4 connections crashed hark).
type h2Attacker struct {
	conn net.Conn
	fr   *http2.Framer

	wmu sync.Mutex // serializes frame writes

	mu        sync.Mutex
	cond      *sync.Cond
	connWin   int64
	initWin   int64
	streamWin map[uint32]int64
	closed    map[uint32]bool
	statuses  map[uint32]string
	dead      bool
}

func dialH2Attacker(t *testing.T, addr string) *h2Attacker {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &h2Attacker{conn: c, fr: http2.NewFramer(c, c), connWin: 65535, initWin: 65535,
		streamWin: map[uint32]int64{}, closed: map[uint32]bool{}, statuses: map[uint32]string{}}
	a.cond = sync.NewCond(&a.mu)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	go a.read()
	t.Cleanup(func() { c.Close() })
	return a
}

func (a *h2Attacker) write(fn func() error) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return fn()
}

func (a *h2Attacker) read() {
	dec := hpack.NewDecoder(4096, nil)
	defer func() {
		a.mu.Lock()
		a.dead = true
		a.cond.Broadcast()
		a.mu.Unlock()
	}()
	for {
		f, err := a.fr.ReadFrame()
		if err != nil {
			return
		}
		a.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
					for id := range a.streamWin {
						a.streamWin[id] += int64(v) - a.initWin
					}
					a.initWin = int64(v)
				}
				go a.write(a.fr.WriteSettingsAck)
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				a.connWin += int64(f.Increment)
			} else {
				a.streamWin[f.StreamID] += int64(f.Increment)
			}
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, hf := range fields {
				if hf.Name == ":status" {
					a.statuses[f.StreamID] = hf.Value
				}
			}
		case *http2.RSTStreamFrame:
			a.closed[f.StreamID] = true
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				go a.write(func() error { return a.fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			a.dead = true
		}
		a.cond.Broadcast()
		a.mu.Unlock()
	}
}

// attack opens streams POSTs of size bytes each to path and sends their
// bodies, round robin, for as long as the server's windows allow, until
// every body is sent, the connection dies or stop is closed.
func (a *h2Attacker) attack(path string, streams, size int, stop <-chan struct{}) {
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	ids := make([]uint32, streams)
	left := map[uint32]int{}
	for i := range ids {
		id := uint32(2*i + 1)
		ids[i] = id
		hbuf.Reset()
		for _, hf := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "hark"}, {":path", path},
			{"content-type", "application/json"}, {"content-length", strconv.Itoa(size)}} {
			enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
		}
		block := bytes.Clone(hbuf.Bytes())
		a.mu.Lock()
		a.streamWin[id] = a.initWin
		a.mu.Unlock()
		if a.write(func() error {
			return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
		}) != nil {
			return
		}
		left[id] = size
	}
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for len(left) > 0 {
		select {
		case <-stop:
			return
		default:
		}
		progressed := false
		for _, id := range ids {
			if left[id] == 0 {
				continue
			}
			a.mu.Lock()
			if a.dead {
				a.mu.Unlock()
				return
			}
			if a.closed[id] {
				delete(left, id)
				a.mu.Unlock()
				continue
			}
			n := min(int64(len(chunk)), a.connWin, a.streamWin[id], int64(left[id]))
			if n <= 0 {
				a.mu.Unlock()
				continue
			}
			a.connWin -= n
			a.streamWin[id] -= n
			a.mu.Unlock()
			left[id] -= int(n)
			end := left[id] == 0
			if end {
				delete(left, id)
			}
			if a.write(func() error { return a.fr.WriteData(id, end, chunk[:n]) }) != nil {
				return
			}
			progressed = true
		}
		if !progressed {
			// Wait for a window update (or the end).
			a.mu.Lock()
			waited := make(chan struct{})
			go func() {
				select {
				case <-time.After(50 * time.Millisecond):
				case <-stop:
				}
				a.mu.Lock()
				a.cond.Broadcast()
				a.mu.Unlock()
				close(waited)
			}()
			a.cond.Wait()
			a.mu.Unlock()
			<-waited
		}
	}
}

// TestH2ZeroWindowAttackIsBounded runs the attack against a known webhook
// token (so its bodies are read) and a made-up one, and measures the
// server's heap meanwhile: it stays within the ingest budget plus what
// HTTP/2 buffers per connection, instead of holding every body.
//
// Not parallel: it measures the process's heap, so other tests must not
// run meanwhile (parallel tests wait until the sequential ones are done).
func TestH2ZeroWindowAttackIsBounded(t *testing.T) {
	const budget = 16 << 20
	h := startServerWith(t, harnessOptions{config: func(c *server.Config) {
		c.IngestMemory = budget
	}})
	src := h.createSource(t, "attacked")
	known := strings.TrimPrefix(devURL(t, src), h.publicURL)
	const (
		conns   = 2
		streams = 100
		size    = 2 << 20 // 400 MiB offered per path
	)
	for _, path := range []string{known, "/integrations/receive/" + strings.Repeat("A", 43)} {
		t.Run(path[len(path)-8:], func(t *testing.T) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			stop := make(chan struct{})
			var wg sync.WaitGroup
			attackers := make([]*h2Attacker, conns)
			for i := range attackers {
				attackers[i] = dialH2Attacker(t, h.addr)
				wg.Go(func() { attackers[i].attack(path, streams, size, stop) })
			}
			var peak uint64
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			for _, a := range attackers {
				a.conn.Close()
			}
			wg.Wait()
			grew := int64(peak) - int64(base)
			t.Logf("%d connections × %d streams × %d MiB: heap grew by %d MiB at most (budget %d MiB)", conns, streams, size>>20, grew>>20, budget>>20)
			// The budget, HTTP/2's receive buffers (1 MiB a connection) and
			// the plumbing of 200 streams; not the 400 MiB offered.
			if limit := int64(budget + 48<<20); grew > limit {
				t.Fatalf("heap grew by %d MiB under the attack; want at most %d MiB", grew>>20, limit>>20)
			}
		})
	}
	// The server still answers.
	if r := h.ingest(t, h.publicURL+known, segmentTrack); r.status != 200 && r.status != 503 {
		t.Fatalf("after the attack: HTTP %d %s", r.status, r.body)
	}
}
