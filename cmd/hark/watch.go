package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
)

// Reconnect backoff of the streaming commands (runs watch, events tail):
// the first retry after a lost stream waits reconnectFirst, each failed
// retry doubles the wait, up to reconnectMax. A restart of hark serve takes
// a second or two, so the first retries find it back quickly, and a server
// that stays down is asked twice a minute.
const (
	reconnectFirst = time.Second
	reconnectMax   = 30 * time.Second
)

// streamSession is one connection of a streaming command: it opens the
// stream, calls answered once the server has answered the call (its
// response headers arrived), prints what the stream carries and returns how
// the stream ended: nil when the server ended it.
type streamSession func(ctx context.Context, answered func()) error

// follow runs session until ctx is done (Ctrl-C), reconnecting whenever the
// stream is lost — the server restarted, the connection dropped, the server
// ended the stream — with backoff, and saying so on errOut. It returns nil
// once ctx is done. It gives up, returning the error, when the very first
// connection fails (a wrong --server should fail at once, with its hint)
// and on errors that a retry cannot mend (a refused token, an unknown
// environment).
func follow(ctx context.Context, errOut io.Writer, session streamSession) error {
	everAnswered, lost := false, false
	var delay time.Duration
	for {
		answered := false
		err := session(ctx, func() {
			answered = true
			if lost {
				fmt.Fprintln(errOut, "reconnected")
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		var fatal *fatalStreamError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if !everAnswered && !answered {
			return streamError(err)
		}
		everAnswered = true
		if permanent(err) {
			return err
		}
		if answered {
			// The stream was up: a new loss starts the backoff again.
			delay = reconnectFirst
			fmt.Fprintf(errOut, "connection lost (%s); reconnecting in %s…\n", lossReason(err), fmtDuration(delay))
		} else {
			delay = min(2*delay, reconnectMax)
			fmt.Fprintf(errOut, "cannot reconnect yet (%s); retrying in %s…\n", lossReason(err), fmtDuration(delay))
		}
		lost = true
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// fatalStreamError ends follow at once: the command cannot go on whatever
// the server does, e.g. standard output is closed (hark runs watch | head).
type fatalStreamError struct{ err error }

func (e *fatalStreamError) Error() string { return e.err.Error() }
func (e *fatalStreamError) Unwrap() error { return e.err }

// streamError is the error of a stream that ended before it ever got going.
func streamError(err error) error {
	if err == nil {
		return errors.New("the server ended the stream")
	}
	return err
}

// permanent reports whether a stream's error is one a reconnect cannot
// mend: the request itself is wrong, or the token is.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument,
		connect.CodeNotFound, connect.CodeFailedPrecondition, connect.CodeUnimplemented, connect.CodeOutOfRange:
		return true
	}
	return false
}

// lossReason says in a few words why a stream ended.
func lossReason(err error) string {
	var cerr *connect.Error
	switch {
	case err == nil:
		return "the server ended the stream"
	case isConnError(err):
		return "the server does not answer"
	case errors.As(err, &cerr) && cerr.Message() != "":
		return cerr.Message()
	}
	return err.Error()
}
