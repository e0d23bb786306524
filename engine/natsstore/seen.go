package natsstore

import (
	"bytes"
	"sync"
	"time"
)

// seen is what this DB has been shown of the stream: for each subject, the
// sequence of the newest message its watch delivered or its own commits
// wrote, kept for seenFor.
//
// It exists because no read of a replicated stream is sure to be current.
// A direct get is answered by any replica; an ordered consumer (a scan)
// runs on whichever server the cluster placed it; even the leader applies
// a committed entry on its own schedule, so a follower, and a watch
// consumer on it, can have a message before the leader answers for it.
// A node that reacts to a change — its watch reported a trigger, it just
// committed a user — and then reads an older value would keep that value
// (a trigger registry without the trigger, a cache entry, a run watcher
// that waits for the next change) although the store holds the new one.
// Each read is checked against what seen held when the read began (a
// sighting noted meanwhile is a concurrent commit, not a sign the read
// trails) and asked again while it trails, so a node's reads never go back
// behind what it had been shown: monotonic reads and read-your-writes, as
// on one Badger.
type seen struct {
	mu     sync.Mutex
	bySubj map[string]sighting
	// maxSeq is the highest sequence noted per table (a key's first
	// byte): a scan that read a message at or past it is current without
	// looking at bySubj.
	maxSeq [256]uint64
	// log holds the sightings in the order noted, from head on, for
	// forgetting them.
	log  []sighting
	head int
	// noted counts the sightings: a read's mark is the count when it
	// began.
	noted uint64
}

type sighting struct {
	subj string
	key  []byte
	seq  uint64
	at   time.Time
	n    uint64 // its place in noting order, from 1
}

// seenFor is how long a sighting is kept: far longer than a replica trails
// its leader even on a loaded machine (milliseconds), short enough that the
// sightings of a busy node stay a few MiB.
const seenFor = 5 * time.Second

// shortLived is the TTL under which a message is not noted: it may be gone
// by the time it is read, and its absence is then no sign that a read
// trails. (Idempotency markers, run feed entries and tombstones last
// minutes to days.)
const shortLived = time.Minute

// note records that the message seq of subj (key's subject) exists; ttl is
// the message's TTL (0: none).
func (s *seen) note(subj string, key []byte, seq uint64, ttl time.Duration) {
	if ttl > 0 && ttl < shortLived {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySubj == nil {
		s.bySubj = map[string]sighting{}
	}
	s.forget(now)
	if old, ok := s.bySubj[subj]; ok && old.seq >= seq {
		return
	}
	s.noted++
	si := sighting{subj: subj, key: key, seq: seq, at: now, n: s.noted}
	s.bySubj[subj] = si
	s.log = append(s.log, si)
	if len(key) > 0 {
		s.maxSeq[key[0]] = max(s.maxSeq[key[0]], seq)
	}
}

// forget drops the sightings older than seenFor.
func (s *seen) forget(now time.Time) {
	for s.head < len(s.log) && now.Sub(s.log[s.head].at) > seenFor {
		old := s.log[s.head]
		if cur, ok := s.bySubj[old.subj]; ok && cur.seq == old.seq {
			delete(s.bySubj, old.subj)
		}
		s.log[s.head] = sighting{}
		s.head++
	}
	if s.head > 1024 && s.head > len(s.log)/2 {
		s.log = append(s.log[:0], s.log[s.head:]...)
		s.head = 0
	}
}

// mark is taken before a read is sent, for behind and scanBehind.
func (s *seen) mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noted
}

// behind reports whether a read of subj begun at mark that found the
// message seq (0: none) trails a message this DB had been shown. A subject
// noted again since the mark counts as not behind: its older sighting is
// gone, and the newer is a change whose own watcher reads it again.
func (s *seen) behind(subj string, seq, mark uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	si, ok := s.bySubj[subj]
	return ok && si.n <= mark && si.seq > seq
}

// scanBehind reports whether a scan of the keys under prefix begun at mark
// trails: it does when this DB had been shown a message under the prefix
// later than every message the scan read. (A server applies messages in order: a scan that
// read any message at or past a sighting reflects it.)
func (s *seen) scanBehind(prefix []byte, newest, mark uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(prefix) > 0 && s.maxSeq[prefix[0]] <= newest {
		return false
	}
	for _, si := range s.bySubj {
		if si.n <= mark && si.seq > newest && bytes.HasPrefix(si.key, prefix) {
			return true
		}
	}
	return false
}
