package natsstore

import (
	"testing"
	"time"
)

func TestSeen(t *testing.T) {
	var s seen
	trigger := []byte("\x14development\x00trg_1")
	other := []byte("\x14staging\x00trg_2")
	s.note("hark.14.development.trg_1", trigger, 57, 0)
	s.note("hark.14.development.trg_1", trigger, 40, 0) // older: changes nothing

	for _, c := range []struct {
		seq  uint64
		want bool
	}{{0, true}, {56, true}, {57, false}, {90, false}} {
		if got := s.behind("hark.14.development.trg_1", c.seq, s.mark()); got != c.want {
			t.Errorf("a read at %d: behind %v, want %v", c.seq, got, c.want)
		}
	}
	if s.behind("hark.14.development.trg_9", 0, s.mark()) {
		t.Error("a subject never seen is behind")
	}
	// A message that may expire before it is read holds nothing back.
	s.note("hark.0d.dev.short", []byte("\x0ddev\x00short"), 70, 2*time.Second)
	if s.behind("hark.0d.dev.short", 0, s.mark()) {
		t.Error("a short-lived message holds reads back")
	}

	s.note("hark.14.staging.trg_2", other, 60, 0)
	for _, c := range []struct {
		prefix string
		newest uint64
		want   bool
	}{
		{"\x14development\x00", 57, false},
		{"\x14development\x00", 56, true},
		{"\x14development\x00", 0, true},
		// staging's 60 is no reason to scan development again.
		{"\x14development\x00", 58, false},
		{"\x14", 59, true},
		{"\x15", 0, false},
	} {
		if got := s.scanBehind([]byte(c.prefix), c.newest, s.mark()); got != c.want {
			t.Errorf("a scan of %q that read up to %d: behind %v, want %v", c.prefix, c.newest, got, c.want)
		}
	}

	// A sighting noted after a read began is a concurrent commit.
	before := s.mark()
	s.note("hark.14.development.trg_3", trigger, 80, 0)
	if s.behind("hark.14.development.trg_3", 0, before) || s.scanBehind([]byte("\x14development\x00"), 57, before) {
		t.Error("a sighting noted after the read began holds it back")
	}

	// Sightings older than seenFor are forgotten.
	s.forget(time.Now().Add(seenFor + time.Second))
	if s.behind("hark.14.development.trg_1", 0, s.mark()) || s.scanBehind([]byte("\x14"), 0, s.mark()) {
		t.Error("a forgotten sighting still holds reads back")
	}
	if len(s.bySubj) != 0 {
		t.Errorf("%d sightings kept past seenFor", len(s.bySubj))
	}
}
