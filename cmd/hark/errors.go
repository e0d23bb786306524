package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// printError writes err for a person: "hark: <message>", without Connect's
// code prefix; for an expression that does not compile, the expression's line
// with a caret under the column; then the hint, if the error carries one.
func printError(w io.Writer, err error) {
	msg := err.Error()
	var snippet string
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		inner := cerr.Message()
		if inner == "" {
			inner = cerr.Code().String()
		}
		if x := expressionDetail(cerr); x != nil {
			inner = fmt.Sprintf("%s: %d:%d: %s", x.GetField(), x.GetLine(), x.GetColumn(), x.GetMessage())
			snippet = x.GetSnippet()
		}
		// Keep whatever context was wrapped around the Connect error.
		msg = strings.Replace(msg, cerr.Error(), inner, 1)
	}
	fmt.Fprintf(w, "hark: %s\n", msg)
	if snippet != "" {
		fmt.Fprintln(w)
		for line := range strings.SplitSeq(snippet, "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
		fmt.Fprintln(w)
	}
	var hint *hintError
	var usage usageError
	switch {
	case errors.As(err, &hint) && hint.hint != "":
		fmt.Fprintf(w, "hint: %s\n", hint.hint)
	case errors.As(err, &usage) && strings.HasPrefix(usage.hint, "usage: "):
		fmt.Fprintln(w, usage.hint)
	case errors.As(err, &usage) && usage.hint != "":
		fmt.Fprintf(w, "hint: %s\n", usage.hint)
	}
}

// expressionDetail returns the hark.v1.ExpressionError detail of err, if any.
func expressionDetail(err *connect.Error) *harkv1.ExpressionError {
	for _, d := range err.Details() {
		v, derr := d.Value()
		if derr != nil {
			continue
		}
		if x, ok := v.(*harkv1.ExpressionError); ok {
			return x
		}
	}
	return nil
}
