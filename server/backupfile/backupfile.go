// Package backupfile is the format of a hark backup: Badger's backup stream
// inside a small framing of hark's own, so that a backup that is not whole is
// refused instead of restoring part of the data without a word.
//
// A backup file is, in order:
//
//	header   12 bytes   magic "\x89HARKBK\n" (8 bytes), then the format
//	                    version as a big-endian uint32 (now 1)
//	body     N bytes    Badger's backup stream (DB.Backup), as it is
//	trailer  48 bytes   end marker "HARKEND\n" (8 bytes), N as a big-endian
//	                    uint64, then the SHA-256 of header and body (32 bytes)
//
// The magic starts with a byte above 0x7f and ends with a newline, as PNG's
// does, so that a transfer that strips the eighth bit or rewrites line ends
// is caught at once. The length and the checksum come last because the body
// is streamed: neither is known before Badger has written it all. A reader
// therefore holds the last 48 bytes back and decides at the end of the input
// whether they are a trailer that matches what came before: a backup cut
// short anywhere, with a byte changed, or with bytes after its end fails that
// test. Nothing else follows the trailer.
//
// Version 1 is the first framed format. hark before it wrote Badger's stream
// alone; such a file is recognised (it starts with Badger's little-endian
// length and a KVList) and refused with ErrUnframed, since nothing in it
// tells whether it is complete.
package backupfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Version is the format version this package writes and reads.
const Version = 1

// Sizes of the framing.
const (
	HeaderSize  = 12
	TrailerSize = 48
)

var (
	magic     = [8]byte{0x89, 'H', 'A', 'R', 'K', 'B', 'K', '\n'}
	endMarker = [8]byte{'H', 'A', 'R', 'K', 'E', 'N', 'D', '\n'}
)

// The ways a backup can be refused. Each reader error wraps one of them, so
// errors.Is tells them apart; the wrapping message says more.
var (
	// ErrEmpty: the input has no bytes at all.
	ErrEmpty = errors.New("the backup is empty")
	// ErrNotBackup: the input does not start with a hark backup header.
	ErrNotBackup = errors.New("not a hark backup")
	// ErrUnframed: the input is Badger's bare backup stream, as hark wrote
	// before the framing.
	ErrUnframed = errors.New("an unframed backup from an older hark")
	// ErrTruncated: the input ends before its header or trailer is whole, or
	// the last bytes are not a trailer: cut short, or followed by bytes after
	// the end.
	ErrTruncated = errors.New("the backup is truncated")
	// ErrLength: the trailer's length is not the length of the body.
	ErrLength = errors.New("the backup's length does not match its end marker")
	// ErrChecksum: the SHA-256 does not match: a byte was changed.
	ErrChecksum = errors.New("the backup's checksum does not match")
)

// VersionError is a header of a format version this hark cannot read.
type VersionError struct{ Version uint32 }

func (e *VersionError) Error() string {
	return fmt.Sprintf("the backup has format version %d, this hark reads version %d: restore it with the hark that wrote it, or a newer one", e.Version, Version)
}

// Writer frames a backup: NewWriter writes the header, Write the body, Close
// the trailer. It is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	sum    hash.Hash
	n      uint64
	err    error // the first write error; later writes return it
	closed bool
}

// NewWriter writes the header to w and returns the Writer for the body.
func NewWriter(w io.Writer) (*Writer, error) {
	fw := &Writer{w: w, sum: sha256.New()}
	var h [HeaderSize]byte
	copy(h[:], magic[:])
	binary.BigEndian.PutUint32(h[8:], Version)
	fw.sum.Write(h[:])
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write the backup header: %w", err)
	}
	return fw, nil
}

// Write writes body bytes.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("write to a closed backup")
	}
	n, err := w.w.Write(p)
	w.sum.Write(p[:n])
	w.n += uint64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close writes the trailer. It does not close the underlying writer. A
// Writer whose writes failed writes no trailer, so what it wrote is refused
// as truncated.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.closed = true
	var t [TrailerSize]byte
	copy(t[:], endMarker[:])
	binary.BigEndian.PutUint64(t[8:], w.n)
	copy(t[16:], w.sum.Sum(nil))
	if _, err := w.w.Write(t[:]); err != nil {
		return fmt.Errorf("write the backup trailer: %w", err)
	}
	return nil
}

// Reader reads the body of a framed backup. Read returns io.EOF only once
// the trailer has been read and matches the body; a backup that is not whole
// makes Read fail with an error wrapping ErrTruncated, ErrLength or
// ErrChecksum instead, so a consumer of the body (Badger's Load) that reads
// to the end cannot take a damaged backup for a good one.
type Reader struct {
	r          io.Reader
	sum        hash.Hash
	n          uint64
	buf        []byte // buf[start:end] is read but not returned; the last TrailerSize bytes may be the trailer
	start, end int
	eof        bool  // r is at its end
	err        error // sticky result: io.EOF once verified, or the refusal
}

// readChunk is how much Reader asks of its source at once.
const readChunk = 64 << 10

// NewReader reads and checks the header from r and returns the Reader of
// the body.
func NewReader(r io.Reader) (*Reader, error) {
	var h [HeaderSize]byte
	n, err := io.ReadFull(r, h[:])
	switch {
	case n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return nil, ErrEmpty
	case err == io.ErrUnexpectedEOF && bytes.HasPrefix(magic[:], h[:min(n, len(magic))]):
		return nil, fmt.Errorf("%w: it ends within its %d-byte header, after %d bytes", ErrTruncated, HeaderSize, n)
	case err != nil && err != io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("read the backup header: %w", err)
	}
	if !bytes.Equal(h[:8], magic[:]) {
		if looksUnframed(h[:n]) {
			return nil, fmt.Errorf("%w: it has no header, end marker or checksum, so nothing tells whether it is complete; take a new backup with this hark (hark backup) and restore that", ErrUnframed)
		}
		return nil, fmt.Errorf("%w: it does not start with hark's backup header", ErrNotBackup)
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != Version {
		return nil, &VersionError{Version: v}
	}
	fr := &Reader{r: r, sum: sha256.New(), buf: make([]byte, readChunk+TrailerSize)}
	fr.sum.Write(h[:])
	return fr, nil
}

// looksUnframed reports whether b starts like Badger's bare backup stream:
// a little-endian uint64 length of a plausible size, then the tag of a
// KVList's first field (1, length-delimited: 0x0a).
func looksUnframed(b []byte) bool {
	if len(b) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(b[:8])
	return n > 0 && n < 1<<32 && b[8] == 0x0a
}

// Read returns body bytes; see Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for !r.eof && r.end-r.start <= TrailerSize {
		if r.start > 0 {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			r.err = fmt.Errorf("read the backup: %w", err)
			return 0, r.err
		}
	}
	avail := r.end - r.start - TrailerSize
	if avail <= 0 {
		// The source has ended and at most TrailerSize bytes are left.
		r.err = r.finish()
		return 0, r.err
	}
	n := copy(p, r.buf[r.start:r.start+avail])
	r.sum.Write(p[:n])
	r.n += uint64(n)
	r.start += n
	return n, nil
}

// finish checks the trailer against the body read; it returns io.EOF when
// they match.
func (r *Reader) finish() error {
	t := r.buf[r.start:r.end]
	if len(t) < TrailerSize || !bytes.Equal(t[:8], endMarker[:]) {
		return fmt.Errorf("%w: it ends without its end marker (was the backup interrupted?), or has bytes after its end", ErrTruncated)
	}
	if n := binary.BigEndian.Uint64(t[8:16]); n != r.n {
		return fmt.Errorf("%w: the end marker says %d bytes, the backup holds %d", ErrLength, n, r.n)
	}
	if !bytes.Equal(t[16:], r.sum.Sum(nil)) {
		return fmt.Errorf("%w: the backup was changed after it was written (a damaged copy?)", ErrChecksum)
	}
	return io.EOF
}

// Verify reads a whole framed backup from r and reports whether it is
// whole: nil, or the error NewReader or Read gives.
func Verify(r io.Reader) error {
	fr, err := NewReader(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, fr)
	return err
}
