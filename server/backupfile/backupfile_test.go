package backupfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/harkhq/hark/server/backupfile"
)

// frame writes body through a Writer and returns the framed bytes.
func frame(t *testing.T, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := backupfile.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// In uneven pieces, as Badger writes.
	for len(body) > 0 {
		n := min(len(body), 1000)
		if _, err := w.Write(body[:n]); err != nil {
			t.Fatal(err)
		}
		body = body[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRoundTrip reads back what Writer wrote, for bodies around the
// Reader's buffer size, through readers that return one byte at a time.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, backupfile.TrailerSize, 64<<10 - 1, 64 << 10, 64<<10 + backupfile.TrailerSize + 1, 300_000} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		framed := frame(t, body)
		if len(framed) != backupfile.HeaderSize+size+backupfile.TrailerSize {
			t.Fatalf("size %d: framed is %d bytes", size, len(framed))
		}
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(framed),
			"one byte": iotest.OneByteReader(bytes.NewReader(framed)),
		} {
			fr, err := backupfile.NewReader(r)
			if err != nil {
				t.Fatalf("size %d, %s: NewReader: %v", size, name, err)
			}
			got, err := io.ReadAll(fr)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("size %d, %s: read %d bytes, %v; want the body back", size, name, len(got), err)
			}
		}
		if err := backupfile.Verify(bytes.NewReader(framed)); err != nil {
			t.Fatalf("size %d: Verify: %v", size, err)
		}
	}
}

// TestRefusals checks that each kind of damage is told apart by its
// sentinel.
func TestRefusals(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("badger "), 20_000)
	good := frame(t, body)
	changed := slices.Clone(good)
	changed[len(good)/2] ^= 0x80
	badLength := slices.Clone(good)
	binary.BigEndian.PutUint64(badLength[len(good)-40:], uint64(len(body)+1))
	newer := slices.Clone(good)
	binary.BigEndian.PutUint32(newer[8:], backupfile.Version+1)
	// Badger's bare stream: a little-endian length, then a KVList.
	unframed := binary.LittleEndian.AppendUint64(nil, 3)
	unframed = append(unframed, 0x0a, 0x01, 0x00)

	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty", nil, backupfile.ErrEmpty},
		{"cut in the header", good[:7], backupfile.ErrTruncated},
		{"header only", good[:backupfile.HeaderSize], backupfile.ErrTruncated},
		{"cut in the body", good[:len(good)/3], backupfile.ErrTruncated},
		{"cut in the trailer", good[:len(good)-10], backupfile.ErrTruncated},
		{"bytes after the end", append(slices.Clone(good), 0), backupfile.ErrTruncated},
		{"a changed byte", changed, backupfile.ErrChecksum},
		{"a wrong length", badLength, backupfile.ErrLength},
		{"unframed", unframed, backupfile.ErrUnframed},
		{"text", []byte("not a backup at all"), backupfile.ErrNotBackup},
		{"short text", []byte("hi"), backupfile.ErrNotBackup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := backupfile.Verify(bytes.NewReader(c.input))
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
	var verr *backupfile.VersionError
	if err := backupfile.Verify(bytes.NewReader(newer)); !errors.As(err, &verr) || verr.Version != backupfile.Version+1 {
		t.Fatalf("Verify of a newer version = %v, want a VersionError", err)
	}
}

// TestReaderFailsAtTheEndNotEarly checks that a consumer reading a damaged
// backup gets the refusal from Read, never io.EOF: Badger's Load reads to
// io.EOF and would take a clean end for a whole backup.
func TestReaderFailsAtTheEndNotEarly(t *testing.T) {
	t.Parallel()
	good := frame(t, bytes.Repeat([]byte{1, 2, 3}, 50_000))
	fr, err := backupfile.NewReader(bytes.NewReader(good[:len(good)-1]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(fr)
	if !errors.Is(err, backupfile.ErrTruncated) {
		t.Fatalf("ReadAll of a truncated backup = %v, want ErrTruncated", err)
	}
	if _, again := fr.Read(make([]byte, 10)); again == nil || again == io.EOF {
		t.Fatalf("a second Read = %v, want the same refusal", again)
	}
}

// TestWriterFailureWritesNoTrailer checks that a Writer whose underlying
// writes failed does not finish the file: what it wrote is refused.
func TestWriterFailureWritesNoTrailer(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	fw := &failAfter{w: &buf, n: 100}
	w, err := backupfile.NewWriter(fw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 200)); err == nil {
		t.Fatal("Write past the failure succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
	if err := backupfile.Verify(bytes.NewReader(buf.Bytes())); !errors.Is(err, backupfile.ErrTruncated) {
		t.Fatalf("Verify of a failed write = %v, want ErrTruncated", err)
	}
	if !strings.Contains(backupfile.ErrUnframed.Error(), "older hark") {
		t.Fatalf("ErrUnframed = %q, want it to name older hark", backupfile.ErrUnframed)
	}
}

// failAfter fails every write after n bytes.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, errors.New("disk full")
	}
	f.n -= len(p)
	return f.w.Write(p)
}
